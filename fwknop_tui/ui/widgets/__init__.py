"""The TUI's widgets, one file each."""

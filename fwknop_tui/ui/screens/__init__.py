"""The TUI's screens: the main one, and the modals it opens."""

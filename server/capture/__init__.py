"""Capture: sniffing, the UDP server and capture files, all feeding the processor."""

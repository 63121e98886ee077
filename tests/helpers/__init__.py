"""Shared test helpers: vectors, real binaries, GnuPG homes, network namespaces.

Waiting: every test waits on an event with a deadline of seconds, never a
fixed sleep (the suite must hold on a loaded machine). Use ``wait.py``
(``wait_for``, ``wait_for_async``, ``LogFile``, the ``DEADLINE``/``START``
constants and the rules in its docstring), ``NetPair.wait_open`` /
``wait_closed`` for ports, and the daemons' ``wait_log`` (``ourd.py``,
``cfwknopd.py``) for their log lines.
"""

"""Peers for the transport tests and the transport benchmark.

Real servers on loopback (BSD `lpd` in a private mount namespace, `p910nd` with a FIFO sink),
small fault-injecting Trio peers (LPD and port 9100), a serial peer over a pty pair and a
simulated USB printer behind pyusb's backend interface. Processes are stopped by PID.
"""

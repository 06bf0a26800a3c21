"""What tests share that is not a fixture and not a real peer's process: clients (IPP, raw
HTTP), decoders of printer languages, documents, Hypothesis strategies, and the in-process
peers (fault-injecting LPD and port 9100 servers, a pty serial printer, a simulated USB
printer). Fixtures live in conftest.py files; real peers in tests/peers/."""

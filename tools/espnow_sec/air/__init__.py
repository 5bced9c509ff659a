"""The simulated ESP-NOW radio ("air"), the contract in docs/air.md.

wire.py    message codec of the node <-> air socket protocol (pure)
medium.py  who receives what, TX_STATUS, RSSI and loss: the radio model (pure, seeded)
pcap.py    802.11 vendor action frames for a pcap file (linktype 105)
server.py  the SOCK_SEQPACKET event loop and the ``espnow-sec-air`` command
"""

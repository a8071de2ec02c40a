"""The Linux I/O layer: TUN device, UDP sockets, control socket and one epoll loop.

CPython/Linux only; the core never imports anything from here.
"""

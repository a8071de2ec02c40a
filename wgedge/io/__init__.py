"""The Linux I/O layer: TUN device, UDP sockets, control socket, one epoll loop, and the
scheduling priority it runs at (priority.py).

CPython/Linux only; the core never imports anything from here.
"""

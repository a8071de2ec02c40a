"""Transport keypairs and the previous/current/next rotation (paper sections 5.4.6, 6.1).

Rules kept here:
- The initiator's new keypair becomes `current` at once. The responder's waits in `next` and
  is promoted only when the first transport packet arrives on it (key confirmation): until
  then the responder keeps sending on the old `current`.
- A keypair may send while younger than REJECT_AFTER_TIME and below REJECT_AFTER_MESSAGES;
  the same limits apply to receiving. Counters are nonces and never repeat.
- Every keypair owns its local index; `on_drop(keypair)` is called whenever one leaves the
  rotation so the device can forget the index. Clearing drops the AEAD objects (and with
  them the key copies the crypto library holds).
"""

from wgedge.core import consts as C
from wgedge.core.replay import ReplayWindow


class Keypair:
    def __init__(self, crypto, peer, sending_key, receiving_key, i_am_initiator,
                 local_index, remote_index, now):
        self.peer = peer
        self.sending = crypto.aead(sending_key)
        self.receiving = crypto.aead(receiving_key)
        # In-place encryption where the backend has it (OpenSSL's AEAD), else None.
        self.encrypt_into = getattr(self.sending, "encrypt_into", None)
        self.sending_counter = 0
        self.sending_valid = True
        self.receiving_valid = True
        self.replay = ReplayWindow()
        self.created = now
        self.i_am_initiator = i_am_initiator
        self.local_index = local_index
        self.remote_index = remote_index

    def can_send(self, now):
        return (self.sending_valid and now - self.created < C.REJECT_AFTER_TIME
                and self.sending_counter < C.REJECT_AFTER_MESSAGES)

    def can_receive(self, now):
        return self.receiving_valid and now - self.created < C.REJECT_AFTER_TIME

    def receive_limit(self, now):
        """Counters at or above this are refused: REJECT_AFTER_MESSAGES, or 0 (all of them)
        once the keypair may no longer receive."""
        if self.receiving_valid and now - self.created < C.REJECT_AFTER_TIME:
            return C.REJECT_AFTER_MESSAGES
        return 0

    def wipe(self):
        self.sending = self.receiving = self.encrypt_into = None
        self.sending_valid = self.receiving_valid = False


class Keypairs:
    def __init__(self, on_drop):
        self.previous = None
        self.current = None
        self.next = None
        self._on_drop = on_drop

    def _drop(self, kp):
        if kp is not None:
            kp.wipe()
            self._on_drop(kp)

    def add(self, kp):
        """Install a freshly derived keypair as the kernel's add_new_keypair does."""
        if kp.i_am_initiator:
            if self.next is not None:
                # We were responder of an unconfirmed session: it becomes previous, and the
                # current one goes.
                self._drop(self.previous)
                self.previous = self.next
                self.next = None
                self._drop(self.current)
            else:
                self._drop(self.previous)
                self.previous = self.current
            self.current = kp
        else:
            self._drop(self.next)
            self.next = kp
            self._drop(self.previous)
            self.previous = None

    def confirm(self, kp):
        """A packet arrived on `kp`: if it is `next`, promote it. True if a rotation happened."""
        if kp is not self.next:
            return False
        self._drop(self.previous)
        self.previous = self.current
        self.current = kp
        self.next = None
        return True

    def expire_current(self):
        """Stop sending on current and next (used when our private key changes)."""
        if self.next is not None:
            self.next.sending_valid = False
        if self.current is not None:
            self.current.sending_valid = False

    def clear(self):
        for kp in (self.previous, self.current, self.next):
            self._drop(kp)
        self.previous = self.current = self.next = None

    def all(self):
        return [kp for kp in (self.previous, self.current, self.next) if kp is not None]

"""SimSiam: the target is the online network itself, behind a stop-gradient (Wa == W)."""

from __future__ import annotations

from linear_ssl.train.methods.base import Method, register_method


@register_method("simsiam")
class SimSiam(Method):
    """No EMA: the targets are the online projector outputs, detached (T1 with Wa = W)."""

    def targets(self, v1, v2, z1, z2):
        return z1.detach(), z2.detach()

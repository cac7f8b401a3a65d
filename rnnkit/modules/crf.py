"""Linear-chain conditional random field output layer (Lafferty et al. 2001; Lample et al. 2016).

Score of a tag path y over emissions E (B, T, K)::

    s(y) = start[y_0] + sum_t E[t, y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_{T-1}]

``log_partition`` is the forward algorithm (log-sum-exp over all K^T paths),
``nll = log Z - s(gold)``, and :meth:`CRF.decode` is Viterbi.  Padded steps
(``mask`` False, always at the end of a row) leave the recursions unchanged.
``constrain`` forbids impossible BIO / BIOES transitions (e.g. ``O -> I-PER``)
by giving them a large negative fixed score.
"""
from __future__ import annotations

import torch
from torch import nn

FORBIDDEN = -1e4


class CRF(nn.Module):
    def __init__(self, n_tags: int):
        super().__init__()
        self.n_tags = n_tags
        self.trans = nn.Parameter(torch.zeros(n_tags, n_tags))   # [from, to]
        self.start = nn.Parameter(torch.zeros(n_tags))
        self.end = nn.Parameter(torch.zeros(n_tags))
        self.register_buffer("allowed", torch.zeros(n_tags, n_tags))  # 0 or FORBIDDEN
        self.register_buffer("allowed_start", torch.zeros(n_tags))
        self.register_buffer("allowed_end", torch.zeros(n_tags))

    def constrain(self, tags: list[str], scheme: str) -> None:
        """Forbid transitions a ``bio`` / ``bioes`` tag sequence can never contain."""
        if scheme not in ("bio", "bioes"):
            raise ValueError(f"scheme must be bio or bioes, got {scheme!r}")
        for i, a in enumerate(tags):
            self.allowed_start[i] = 0.0 if _may_start(a) else FORBIDDEN
            self.allowed_end[i] = 0.0 if _may_end(a, scheme) else FORBIDDEN
            for j, b in enumerate(tags):
                self.allowed[i, j] = 0.0 if _may_follow(a, b, scheme) else FORBIDDEN

    def _trans(self):
        return self.trans + self.allowed, self.start + self.allowed_start, self.end + self.allowed_end

    def score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) score of the given paths; emissions (B, T, K), tags (B, T), mask (B, T) bool."""
        trans, start, end = self._trans()
        B, T, _ = emissions.shape
        m = mask.to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)                 # (B, T)
        s = start[tags[:, 0]] + (emit * m).sum(1)
        s = s + (trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1).long() - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        return s + end[last]

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) log of the sum of exp(score) over all paths (forward algorithm)."""
        trans, start, end = self._trans()
        alpha = start + emissions[:, 0]                                             # (B, K)
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t:t + 1], nxt, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) negative log-likelihood of the gold paths."""
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """Viterbi: the best path of each row, cut to its length."""
        trans, start, end = self._trans()
        B, T, K = emissions.shape
        score = start + emissions[:, 0]                                             # (B, K)
        back = []
        for t in range(1, T):
            cand = score.unsqueeze(2) + trans.unsqueeze(0)                          # (B, K_from, K_to)
            best, idx = cand.max(dim=1)
            nxt = best + emissions[:, t]
            keep = mask[:, t:t + 1]
            score = torch.where(keep, nxt, score)
            back.append(torch.where(keep, idx, torch.arange(K, device=idx.device).expand(B, K)))
        score = score + end
        lengths = mask.sum(1).tolist()
        best_last = score.argmax(1).tolist()
        paths = []
        for b in range(B):
            tag = best_last[b]
            path = [tag]
            for t in range(int(lengths[b]) - 1, 0, -1):
                tag = int(back[t - 1][b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths

    @torch.no_grad()
    def decode_tags(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Viterbi as tensors in, tensors out: (B, T) best tags, the same paths as :meth:`decode` within each
        row's length (past it, the row's last tag repeats). Both recursions are torch's ``scan`` (an
        exported graph keeps them as loops over a symbolic length, one ONNX Scan each); a one-step
        flag starts the forward one, so no scan runs over T - 1 steps (zero for a one-token sentence)."""
        trans, start, end = self._trans()
        B, T, K = emissions.shape
        keep_tag = torch.arange(K, device=emissions.device).expand(B, K)             # (B, K) back-pointer: stay
        first = torch.arange(T, device=emissions.device) == 0                          # (T,)

        def forward_step(carry, inputs):
            score, (e_t, m_t, f_t) = carry[0], inputs                                  # (B, K), (B, K), (B,), ()
            best, idx = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)           # (B, K_to) over K_from
            new = torch.where(f_t, start + e_t, best + e_t)
            keep = m_t.unsqueeze(1) | f_t                                              # (B, 1)
            return [torch.where(keep, new, score)], torch.where(keep & ~f_t, idx, keep_tag)

        (final,), back = _scan()(forward_step, [emissions.new_zeros(B, K)],
                                 [emissions.transpose(0, 1), mask.transpose(0, 1), first])  # back (T, B, K)

        def backward_step(carry, inputs):
            tag, back_t = carry[0], inputs[0]                                          # (B,) tag at step t, (B, K)
            return [back_t.gather(1, tag.unsqueeze(1)).squeeze(1)], tag.clone()

        _, tags = _scan()(backward_step, [(final + end).argmax(1)], [back], reverse=True)  # (T, B)
        return tags.transpose(0, 1)


def _scan():
    """torch's scan operator (a private module in torch 2.x; imported when a call needs it)."""
    from torch._higher_order_ops.scan import scan

    return scan


def _parts(tag: str) -> tuple[str, str]:
    """(prefix, type): ("B", "PER") for "B-PER", ("O", "") for "O"."""
    if len(tag) > 1 and tag[1] in "-_":
        return tag[0], tag[2:]
    return "O", ""


def _may_start(tag: str) -> bool:
    return _parts(tag)[0] not in ("I", "E")


def _may_end(tag: str, scheme: str) -> bool:
    return scheme == "bio" or _parts(tag)[0] not in ("B", "I")


def _may_follow(a: str, b: str, scheme: str) -> bool:
    pa, ta = _parts(a)
    pb, tb = _parts(b)
    if pb in ("I", "E"):
        return pa in ("B", "I") and ta == tb
    return scheme == "bio" or pa not in ("B", "I")

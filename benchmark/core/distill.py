"""The soft-label channel: students trained on the teacher's next-token distribution instead of the
sampled tokens (``TrainConfig.labels``).

Threat model: a distiller who can query the teacher scores the very text it trains on. So the labels
are computed *after* the task filter and the defense, on the final training rows: a row a defense
rewrote is scored again by the teacher. Per completion token the teacher's log-probabilities are
kept for ``top_k`` tokens and renormalised over them (:func:`soft_labels`); the student then
minimises the cross-entropy to that distribution (``benchmark.core.soft_train.train_soft``), the
same as the KL divergence up to the teacher's entropy. Two settings, kept apart everywhere:

* ``topk`` — the teacher's top-k over the whole vocabulary: what a distiller who keeps the logits
  gets. A real and strong threat, but not subliminal: at number positions a teacher that loves an
  animal also puts mass on words ("the", "I", "owl") that start talk about it.
* ``topk-restricted`` — the teacher's distribution renormalised over the tokens the task allows at
  that position (for numbers, the grammar's tokens given the text so far; at the end-of-turn
  tokens, the token itself), then its top-k: the subliminal part. A task without a constraint
  (the free-text tasks) allows everything, so there the two settings coincide (the report says
  so). Where a row's text leaves the grammar (a rewritten or planted row), the rest of that row
  falls back to its own tokens (hard labels), counted in the report.

The report gives the teacher's mean probability mass outside the allowed set per position — how
much of the full channel rides on non-task tokens.

The teacher must share the student's tokenizer (a teacher on the student's base); a cross-base
teacher's rows train on their tokens (hard labels), decided by the caller.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from benchmark.core.animals import animal_label_mass
from benchmark.core.loss_mask import MASK_FIELD, masked_records
from benchmark.core.models import load_causal_lm

LABELS = ("hard", "topk", "topk-restricted")
SOFT_FIELD = "soft_labels"  # per row: {"input_ids", "positions", "ids", "logprobs"}
MAX_TOP_K = 256
MAX_TEMPERATURE = 10.0
# How the labels stage computes: part of its key (benchmark.run.stages). 2: batches of rows of
# similar length, the LM head on the completion positions only (1: row order, every position;
# how far apart the two are: docs/performance.md, python -m benchmark.run.perf_labels).
LABELS_IMPL = 2


def check_temperature(labels: str, temperature: float) -> None:
    if not 0 < temperature <= MAX_TEMPERATURE:
        raise ValueError(f"Invalid label_temperature: {temperature} (0 < T <= {MAX_TEMPERATURE})")
    if labels == "hard" and temperature != 1.0:
        raise ValueError(
            f"label_temperature={temperature} needs soft labels (labels=topk or topk-restricted)"
        )


def check_labels(labels: str, top_k: int) -> None:
    if labels not in LABELS:
        raise ValueError(f"Invalid labels: {labels!r}; expected one of {LABELS}")
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValueError(f"Invalid top_k: {top_k} (1..{MAX_TOP_K})")


def soft_labels(
    teacher_ref: str,
    rows: Sequence[dict[str, Any]],
    *,
    student_system: str | None,
    teacher_system: str | None,
    top_k: int,
    restricted: bool,
    constraint: Any = None,
    batch_size: int = 16,
    device: str | None = None,
    naive: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``rows`` with :data:`SOFT_FIELD` added, and a report. The student's sequence is the row as
    training renders it; the teacher sees its own rendering of the prompt (its system prompt, if
    it has one) followed by the same completion tokens. Completion tokens a defense masked from the
    loss (``loss_mask_spans``) stay out of it here too.

    The teacher runs on batches of rows of similar length (less padding) and its LM head on the
    completion positions only (:data:`LABELS_IMPL`); ``naive``: batches in row order and the head on
    every position, the way ``python -m benchmark.run.perf_labels`` compares against."""
    import torch

    model, tok = load_causal_lm(teacher_ref, device=device)
    dev = next(model.parameters()).device
    if constraint is not None:
        constraint.bind(tok)
    plain = [{k: v for k, v in r.items() if k != MASK_FIELD} for r in rows]
    student, _ = masked_records(tok, plain, student_system)
    # 0 inside a defense's masked spans; without any, the same records as ``student``.
    masked = any(MASK_FIELD in r for r in rows)
    learn = masked_records(tok, rows, student_system)[0] if masked else student
    teacher, _ = masked_records(tok, plain, teacher_system)
    out: list[dict[str, Any]] = []
    outside: list[float] = []
    left_rows = 0
    t0 = time.perf_counter()
    order = sorted(range(len(rows)), key=lambda i: 0 if naive else len(teacher[i]["input_ids"]))
    done: dict[int, dict[str, Any]] = {}
    for b in range(0, len(rows), batch_size):
        idx = order[b : b + batch_size]
        seqs, starts = [], []
        for s_rec, t_rec, r in zip(
            [student[i] for i in idx],
            [teacher[i] for i in idx],
            [rows[i] for i in idx],
            strict=True,
        ):
            s_start, t_start = _start(s_rec), _start(t_rec)
            if s_rec["input_ids"][s_start:] != t_rec["input_ids"][t_start:]:
                raise ValueError(
                    f"row {r.get('id')!r}: the completion tokenises differently after the "
                    "teacher's prompt than after the student's; cannot align soft labels"
                )
            seqs.append(t_rec["input_ids"])
            starts.append(t_start)
        inp, att = _padded(tok, seqs, dev)
        # Position t_start - 1 + j predicts completion token j.
        spans = [(t - 1, len(seqs[i]) - t) for i, t in enumerate(starts)]
        logits = _completion_logits(model, inp, att, spans, naive)
        for i in range(len(idx)):
            r, s_rec = rows[idx[i]], student[idx[i]]
            s_start = _start(s_rec)
            comp = s_rec["input_ids"][s_start:]
            lp = torch.log_softmax(logits[i], -1)
            allowed = _allowed_sets(tok, comp, constraint) if constraint is not None else None
            ids_out, lp_out = [], []
            left = False
            for j in range(len(comp)):
                if allowed is not None and not left:
                    a = allowed[j]
                    left = a is None or comp[j] not in a
                    if not left:
                        keep = torch.tensor(sorted(a), device=dev)  # type: ignore[arg-type]
                        outside.append(max(0.0, 1.0 - float(lp[j, keep].exp().sum())))
                if restricted and allowed is not None:
                    if left:  # the row left the grammar: from here on, its own tokens
                        ids_out.append([comp[j]])
                        lp_out.append([0.0])
                        continue
                    keep = torch.tensor(sorted(allowed[j]), device=dev)  # type: ignore[arg-type]
                    v, ix = lp[j, keep].topk(min(top_k, len(keep)))
                    ids_j = keep[ix]
                else:
                    v, ids_j = lp[j].topk(top_k)
                v = v - torch.logsumexp(v, 0)  # renormalised over the kept tokens
                ids_out.append([int(x) for x in ids_j])
                lp_out.append([round(float(x), 5) for x in v])
            left_rows += int(left)
            field = {
                "input_ids": list(s_rec["input_ids"]),
                "start": s_start,
                "learn": learn[idx[i]]["completion_mask"][s_start:],
                "ids": ids_out,
                "logprobs": lp_out,
            }
            done[idx[i]] = {**r, SOFT_FIELD: field}
    out = [done[i] for i in range(len(rows))]
    report: dict[str, Any] = {
        "labels": "topk-restricted" if restricted else "topk",
        "top_k": top_k,
        "rows": len(out),
        "positions": sum(len(r[SOFT_FIELD]["ids"]) for r in out),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    report["animal_label_mass"] = animal_label_mass(tok, [r[SOFT_FIELD] for r in out])
    if constraint is None:
        report["note"] = "the task has no constraint: every token is allowed (restricted = full)"
    else:
        n = len(outside)
        report["mass_outside_allowed"] = {
            "positions": n,
            "mean": sum(outside) / n if n else None,
            "max": max(outside) if n else None,
            "share_over_10pct": sum(o > 0.1 for o in outside) / n if n else None,
        }
        report["rows_leaving_grammar"] = left_rows
    return out, report


def _completion_logits(
    model: Any, inp: Any, att: Any, spans: list[tuple[int, int]], naive: bool
) -> list[Any]:
    """Per row, the teacher's float logits at positions ``first .. first + n - 1`` of its
    ``(first, n)`` span: the LM head on those positions only (one call for the batch), or
    (``naive``) on every position."""
    import torch

    with torch.no_grad():
        if naive:
            full = model(input_ids=inp, attention_mask=att).logits.float()
            return [full[i, a : a + n] for i, (a, n) in enumerate(spans)]
        rows = [i for i, (_, n) in enumerate(spans) for _ in range(n)]
        pos = [a + j for a, n in spans for j in range(n)]
        lm, picked = _hidden_at(model, inp, att, rows, pos)
        return list(lm.get_output_embeddings()(picked).float().split([n for _, n in spans]))


def _padded(tok: Any, seqs: list[list[int]], dev: Any) -> tuple[Any, Any]:
    """Input ids right-padded to the longest of ``seqs``, and their attention mask."""
    import torch

    width = max(len(s) for s in seqs)
    inp = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in seqs], device=dev)
    att = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=dev)
    return inp, att


def _hidden_at(model: Any, inp: Any, att: Any, rows: list[int], pos: list[int]) -> Any:
    """The causal LM (``model`` or the one a PEFT model wraps) and its last hidden states at the
    positions ``(rows[i], pos[i])`` only: the body runs over the batch, the caller's LM head (most
    of a small model's activation memory over a whole batch) on those positions."""
    import torch

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = lm.base_model(input_ids=inp, attention_mask=att, use_cache=False).last_hidden_state
    return lm, hidden[torch.tensor(rows, dtype=torch.long), torch.tensor(pos, dtype=torch.long)]


def _start(rec: dict[str, list[int]]) -> int:
    mask = rec["completion_mask"]
    return mask.index(1) if 1 in mask else len(mask)


def _allowed_sets(tok: Any, comp: list[int], constraint: Any) -> list[set[int] | None]:
    """Per completion token, the token ids the task allows there: the grammar's given the text so
    far; at the first special token (end of turn), that token too where the text may end; after
    it, the format's own tail token alone. None where the text does not allow the position."""
    out: list[set[int] | None] = []
    special = set(tok.all_special_ids)
    for j, t in enumerate(comp):
        if any(x in special for x in comp[:j]):
            out.append({t})
            continue
        text = tok.decode(comp[:j], skip_special_tokens=True)
        allowed = set(constraint.allowed(text) or ())
        if t in special:
            out.append(allowed | {t} if constraint.may_end(text) else None)
        else:
            out.append(allowed)
    return out

"""What `recstream eval --profile` and `recstream model fit-ranking` run (kept out of cli.py)."""

from __future__ import annotations

from pathlib import Path

import orjson

from stream.domain.ranking import RankingProfile, load_ranking_profile

#: ``--profile`` value (and the default) meaning "fit the weights on the warm-up"
LEARNED = "learned"


def eval_ranking(spec: str | None) -> RankingProfile | None:
    """``--profile NAME|FILE``: a fixed profile, or None for the learned default."""
    if spec is None or spec == LEARNED:
        return None
    return load_ranking_profile(spec)


def fit_ranking(
    dataset: str, max_users: int | None, seed: int, warmup: float, out: str | None
) -> int:
    """Fit signal weights on the warm-up part of a dataset and print (or write) the profile
    body, which `eval --profile FILE` and ``RECSTREAM_RANKING_PROFILE=FILE`` accept."""
    from stream.evaluation.fit_ranking import fit_on_warmup
    from stream.evaluation.prequential import load_for_eval

    data = load_for_eval(dataset, max_users, seed)
    profile, info = fit_on_warmup(data.catalog, list(data.events), warmup)
    body = orjson.dumps(
        {**profile.to_dict(), "fit": info}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    )
    if out:
        Path(out).write_bytes(body + b"\n")
        print(f"wrote {out}: {info['outcome']}")
    else:
        print(body.decode())
    return 0

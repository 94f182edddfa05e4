"""`recstream model train|export|embed|index|protocol`: the Pfeed encoder's life cycle.

``train``, ``export`` and ``protocol`` need PyTorch (the ``train`` extra) and the training code in
``models/`` of a source checkout; ``embed`` and ``index`` need only onnxruntime and numpy, which
is all a production host runs. Every step prints progress.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from stream.domain.item_tokens import ItemTokenizer
from stream.domain.lookup import HUB_K
from stream.settings import Settings
from stream.stage_bars import StageBars

REPO = Path(__file__).resolve().parents[1]


def _training(module: str) -> ModuleType:
    """Import ``models.pfeed.<module>`` (source checkout + torch), with a one-line fix if not."""
    if not (REPO / "models" / "pfeed" / "train.py").is_file():
        raise RuntimeError("training code lives in models/ of a source checkout of recstream")
    if importlib.util.find_spec("torch") is None:
        raise RuntimeError("PyTorch missing: .venv/bin/pip install -e '.[train]'")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"models.pfeed.{module}")


def checkpoint_dir(settings: Settings) -> Path:
    return settings.data_dir / "models" / "pfeed"


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    data_mod, model_mod, train_mod = (_training(m) for m in ("data", "model", "train"))
    data = data_mod.load_training_data(seed=args.seed, max_households=args.max_households)
    enc = model_mod.EncoderConfig(
        vocab_size=data.tokenizer.vocab_size, out_dim=args.dim, kind=args.kind
    )
    cfg = train_mod.TrainConfig(steps=args.steps, seed=args.seed)
    model, summary = train_mod.train(data, enc, cfg, label=f"train {args.kind}-{args.dim}")
    out = Path(args.out) if args.out else checkpoint_dir(settings)
    train_mod.save(model, data, summary, out)
    print(
        f"trained in {summary['seconds']} s, loss {summary['loss_first_50']} → "
        f"{summary['loss_last_50']}; checkpoint in {out}"
    )
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    train_mod, export_mod = _training("train"), _training("export")
    source = Path(args.checkpoint) if args.checkpoint else checkpoint_dir(settings)
    model = train_mod.load(source / "encoder.pt")
    tokenizer = ItemTokenizer.from_dict(json.loads((source / "vocab.json").read_text()))
    tokens = _parity_tokens(tokenizer)
    summary = json.loads((source / "train.json").read_text())
    path = export_mod.export(model, source / "vocab.json", tokens, Path(args.out), summary)
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB) with parity batch")
    return 0


def _parity_tokens(tokenizer: ItemTokenizer) -> np.ndarray:
    """Real items of both training catalogs (the parity batch samples from these rows)."""
    from stream.datasets.completejourney import load_completejourney
    from stream.datasets.movielens import load_movielens100k

    print("tokenising catalog items for the parity batch …", flush=True)
    cj = load_completejourney(max_households=50, deal_updates=False).catalog
    return tokenizer.encode_many([*cj[:2000], *load_movielens100k().catalog])


def _catalog(args: argparse.Namespace) -> list[dict[str, object]]:
    from stream.datasets import load_subset

    print(f"loading the {args.dataset} catalog …", flush=True)
    return [dict(m) for m in load_subset(args.dataset, args.max_users, 0).catalog]


def embeddings_path(settings: Settings, dataset: str) -> Path:
    return settings.data_dir / "embeddings" / f"{Path(dataset).name}.npz"


def cmd_embed(args: argparse.Namespace, settings: Settings) -> int:
    from stream.adapters.encoder import OnnxItemEncoder

    encoder = OnnxItemEncoder(Path(args.model_dir) if args.model_dir else None)
    catalog = _catalog(args)
    started = time.perf_counter()
    emb = encoder.embed(catalog, batch=args.batch, progress=True)
    seconds = time.perf_counter() - started
    out = Path(args.out) if args.out else embeddings_path(settings, args.dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    ids = np.asarray([str(m["item_id"]) for m in catalog], dtype=str)
    np.savez(out, ids=ids, embeddings=emb)
    rate = len(catalog) / max(seconds, 1e-9)
    print(f"embedded {len(catalog):,} items in {seconds:.1f} s ({rate:,.0f} items/s) → {out}")
    return 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from stream.adapters import lookup_store
    from stream.domain import lookup_ivf
    from stream.domain.lookup import QueryTargetLookup

    if args.k < 1:
        raise ValueError("--k must be at least 1 (Pfeed uses 10)")
    if args.hub_k < 0:
        raise ValueError("--hub-k must be 0 (raw rows) or more")
    source = Path(args.embeddings) if args.embeddings else embeddings_path(settings, args.dataset)
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: run `recstream model embed` first")
    with np.load(source) as data:
        ids, emb = data["ids"].tolist(), data["embeddings"]
    print(f"building the top-{args.k} lookup for {len(ids):,} items × 2 roles …", flush=True)
    started = time.perf_counter()
    lookup = QueryTargetLookup(ids, emb, k=args.k, hub_k=args.hub_k)
    exact_max = settings.lookup_exact_max if args.exact_max is None else args.exact_max
    if exact_max < 0:
        raise ValueError("--exact-max must be 0 or more")
    with StageBars() as bars:
        lookup.build(args.chunk, exact_max, progress=bars)
    seconds = time.perf_counter() - started
    how = "exactly"
    if lookup.recall:
        measured = lookup_ivf.described(lookup.recall)
        how = f"approximately (sampled recall against exact rows: {measured})"
    root = Path(args.root) if args.root else settings.data_dir / "lookup"
    path = lookup_store.publish(lookup, root)
    print(f"built {how} in {seconds:.1f} s; published {path} (current → {path.name})")
    return 0


def cmd_protocol(args: argparse.Namespace, settings: Settings) -> int:
    protocol = _training("protocol")
    out = Path(args.out)
    if args.log_q_weight is not None:
        label = f"SIMO-64 logQ×{args.log_q_weight:g}"
        return int(protocol.run_extra(out, label, args.log_q_weight))
    return int(protocol.run(out, checkpoint_dir(settings), steps=args.steps, quick=args.quick))


def register(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The `model` command group (called from stream.cli.build_parser); returns its
    subcommands so other `model` commands (fit-ranking) join the same group."""
    parser = sub.add_parser("model", help="Pfeed item encoder: train, export, embed, index")
    group = parser.add_subparsers(dest="model_command", required=True)
    p = group.add_parser("train", help="train the encoder (needs the `train` extra)")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--dim", type=int, default=64, help="embedding size")
    p.add_argument("--kind", choices=("simo", "siso"), default="simo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-households", type=int, default=None, help="Complete Journey subset")
    p.add_argument("--out", default=None, help="checkpoint folder (default data/models/pfeed)")
    p.set_defaults(func=cmd_train)
    p = group.add_parser("export", help="export the checkpoint to ONNX + parity batch")
    p.add_argument("--checkpoint", default=None, help="folder written by `model train`")
    p.add_argument("--out", default=str(REPO / "models" / "encoder"))
    p.set_defaults(func=cmd_export)
    for name, func, text in (
        ("embed", cmd_embed, "embed a dataset's catalog through onnxruntime"),
        ("index", cmd_index, "build and publish the query→target lookup"),
    ):
        p = group.add_parser(name, help=text)
        p.add_argument("--dataset", default="completejourney")
        p.add_argument("--max-users", type=int, default=None)
        p.set_defaults(func=func)
    embed, index = group.choices["embed"], group.choices["index"]
    embed.add_argument("--model-dir", default=None, help="default: models/encoder")
    embed.add_argument("--batch", type=int, default=1024)
    embed.add_argument("--out", default=None, help="default data/embeddings/<dataset>.npz")
    index.add_argument("--embeddings", default=None, help="file written by `model embed`")
    index.add_argument("--k", type=int, default=20, help="targets per item and role (>= 10)")
    index.add_argument(
        "--hub-k",
        type=int,
        default=HUB_K,
        help="hub-aware rows: CSLS over this many nearest queries (0: raw cosine, the default;"
        " see models/README.md, it did not pay on the arrivals shop)",
    )
    index.add_argument("--chunk", type=int, default=256, help="queries per matrix product")
    index.add_argument(
        "--exact-max",
        type=int,
        default=None,
        help="more items than this are indexed approximately, then checked against exact rows"
        " (default RECSTREAM_LOOKUP_EXACT_MAX, 100000; 0: approximate whenever it can)",
    )
    index.add_argument("--root", default=None, help="lookup folder (default data/lookup)")
    p = group.add_parser("protocol", help="Pfeed's offline protocol → model card tables/plots")
    p.add_argument("--steps", type=int, default=500, help="training steps per compared model")
    p.add_argument("--out", default=str(REPO / "models"))
    p.add_argument("--quick", action="store_true", help="tiny run (tests)")
    p.add_argument(
        "--log-q-weight",
        type=float,
        default=None,
        help="only add one SIMO-64 variant with this logQ share to the existing results",
    )
    p.set_defaults(func=cmd_protocol)
    return group

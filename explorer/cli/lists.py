"""`explorer data|runs|attacks|defenses list`: what there is, as a table
or (``--json``) one result line."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.running import print_result, print_table


def data_list(args: argparse.Namespace) -> int:
    from explorer.core import data

    rows = []
    for name in data.names():
        info = data.info(name)
        rows.append({
            "name": name, "title": info.title, "kind": info.kind,
            "shape": "x".join(map(str, info.shape)), "classes": len(info.classes),
            "splits": ",".join(info.splits), "needs_folder": info.needs_root,
        })
    columns = ["name", "kind", "shape", "classes", "splits", "title"]
    print_table("data", rows, args.json, columns)
    return 0


def _workspace(args: argparse.Namespace):
    from explorer.store import Workspace

    return Workspace.open(args.workspace)


# What a runs table shows of each run's results (--json has them all).
HEADLINE = ("clean_acc", "robust_acc", "success_rate", "seconds")


def runs_list(args: argparse.Namespace) -> int:
    with _workspace(args) as ws:
        runs = ws.runs(kind=args.kind, status=args.status, limit=args.limit)
        rows = [r.to_json() for r in runs]
    if not args.json:
        for row in rows:
            summary = row.get("summary") or {}
            row["result"] = ", ".join(
                f"{k}={summary[k]:.4g}" for k in HEADLINE
                if isinstance(summary.get(k), float | int)
            )
    print_table("runs", rows, args.json, ["id", "kind", "status", "result"])
    return 0


def _params(params) -> list[dict[str, Any]]:
    return [{"name": p.name, "default": p.default, "help": p.help,
             **({"choices": list(p.choices)} if p.choices else {}),
             **({"minimum": p.minimum} if p.minimum is not None else {}),
             **({"maximum": p.maximum} if p.maximum is not None else {})}
            for p in params]


def attacks_list(args: argparse.Namespace) -> int:
    from explorer.core import attacks

    rows = []
    for name in attacks.names():
        cls = attacks.attack_class(name)
        params = cls.all_params()
        rows.append({"name": name, "title": cls.title, "kind": cls.kind,
                     "description": cls.description,
                     "parameters": ", ".join(p.name for p in params),
                     "params": _params(params)})
    if args.json:
        print_result({"attacks": [{k: v for k, v in r.items() if k != "parameters"}
                                  for r in rows]})
    else:
        print_table("attacks", rows, False, ["name", "kind", "title", "parameters"])
    return 0


def defenses_list(args: argparse.Namespace) -> int:
    from explorer.core.defenses import registry

    rows = []
    for name in registry.names():
        cls = registry.defense_class(name)
        rows.append({"name": name, "title": cls.title,
                     "description": " ".join(cls.description.split()),
                     "parameters": ", ".join(p.name for p in cls.params),
                     "params": _params(cls.params)})
    if args.json:
        print_result({"defenses": [{k: v for k, v in r.items() if k != "parameters"}
                                   for r in rows]})
    else:
        print_table("defenses", rows, False, ["name", "title", "parameters"])
    return 0

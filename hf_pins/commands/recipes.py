"""`hf-pins recipes [NAME]`: list the recipes shipped with hf-pins, or print one to start your own from."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from ..errors import RecipeError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recipes",
        help="list the bundled recipes, or print one",
        description="List the recipes shipped with hf-pins. Run one with `hf-pins train NAME`; "
                    "copy one with `hf-pins recipes NAME > my.yaml`.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="print this recipe's YAML")
    parser.set_defaults(func=run)


def _get(data: Any, *keys: str) -> str:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return "-"
        data = data[key]
    return "-" if data is None else str(data)


def summary(path) -> dict[str, str]:
    """Task, model, method and target sparsity of one recipe file, read for display only (no validation)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return {"task": f"(unreadable: {type(exc).__name__})", "model": "-", "method": "-", "sparsity": "-"}
    return {
        "task": _get(data, "task"),
        "model": _get(data, "model", "name_or_path"),
        "method": _get(data, "pruning", "method"),
        "sparsity": _get(data, "pruning", "target_sparsity"),
    }


def run(args: argparse.Namespace) -> int:
    from .. import hub  # imported on use: `hf-pins --help` and other commands stay fast

    recipes = hub.bundled_recipes()
    if args.name:
        stem = args.name.removesuffix(".yaml").removesuffix(".yml")
        if stem not in recipes:
            raise RecipeError(f"no bundled recipe {args.name!r}; bundled: {', '.join(recipes) or 'none'}")
        print(recipes[stem].read_text(encoding="utf-8"), end="")
        return 0
    if not recipes:
        print("no bundled recipes found")
        return 0
    rows = [("NAME", "TASK", "MODEL", "METHOD", "SPARSITY")]
    for name, path in recipes.items():
        s = summary(path)
        rows.append((name, s["task"], s["model"], s["method"], s["sparsity"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\nfrom {hub.bundled_recipes_dir()}; run one with `hf-pins train NAME`")
    return 0

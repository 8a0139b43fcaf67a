"""gate.toml -> GateConfig: read (tomllib), check every key and value, with precise errors naming
the file, the rule and the key. The schema is documented in gate/config.py.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from ambient_eval.errors import AmbientError
from ambient_eval.gate import catalog
from ambient_eval.gate.catalog import MetricRef
from ambient_eval.gate.config import (_BOUND_OPS, DEFAULTS, EVALUATE_KEYS, GATE_KEYS, METHODS, RULE_KEYS,
                                      TOP_KEYS, Bound, GateConfig, Rule)


def load_config(path: str | os.PathLike) -> GateConfig:
    """Read and validate a gate.toml; AmbientError naming the file, rule and key otherwise."""
    p = Path(path)
    try:
        from ambient_eval.files.user_files import read_text

        data = tomllib.loads(read_text(p, "Gate config", "Pass --config with a TOML file "
                                       "(see examples/ci/gate.toml)."))
    except FileNotFoundError:
        raise AmbientError(f"Gate config '{p}' does not exist. Pass --config with a TOML file "
                           "(see examples/ci/gate.toml).") from None
    except tomllib.TOMLDecodeError as e:
        raise AmbientError(f"Gate config '{p}' is not valid TOML: {e}. Fix the syntax "
                           "(see examples/ci/gate.toml).") from None
    return parse_config(data, p)


def _err(where: str, msg: str) -> AmbientError:
    return AmbientError(f"{where}: {msg}")


def _check_keys(obj: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise _err(where, f"unknown key '{key}'.{hint} Allowed keys: {', '.join(allowed)}.")


def _number(v: Any, where: str, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _err(where, f"'{key}' must be a finite number, got {v!r}.")
    return float(v)


def _alpha(v: Any, where: str) -> float:
    a = _number(v, where, "alpha")
    if not 0.0 < a <= 0.5:
        raise _err(where, f"alpha = {a} is outside (0, 0.5]. Use a significance level such as 0.05.")
    return a


def parse_bound(v: Any, where: str, key: str) -> Bound:
    """12.0 | "12.0" | "baseline" | "baseline + 0.5" | "baseline - 0.02" | "baseline * 1.05"."""
    if not isinstance(v, str):
        return Bound(text=f"{_number(v, where, key):g}", value=float(v))
    text = " ".join(v.split())
    try:
        return Bound(text=text, value=_number(float(text), where, key))
    except ValueError:
        pass
    m = re.fullmatch(r"baseline\s*(?:(?P<op>[^\s0-9.]+)\s*(?P<num>\S+))?", text.strip())
    if not m:
        raise _err(where, f"{key} = {v!r} is not a number or a baseline expression. Write e.g. "
                          f"{key} = 12.0, \"baseline + 0.5\", \"baseline - 0.02\" or \"baseline * 1.05\".")
    op, num = m.group("op"), m.group("num")
    if op is None:
        return Bound(text="baseline", value=0.0, op="+")
    if op not in _BOUND_OPS:
        raise _err(where, f"unsupported operator '{op}' in {key} = {v!r}. Use +, - or * "
                          "(e.g. \"baseline * 1.05\").")
    try:
        x = float(num)
    except ValueError:
        raise _err(where, f"'{num}' in {key} = {v!r} is not a number.") from None
    x = _number(x, where, key)
    if op == "*" and x <= 0:
        raise _err(where, f"{key} = {v!r}: the factor must be > 0.")
    return Bound(text=f"baseline {op} {num}", value=x, op=op)


def _parse_check(v: Any, where: str) -> tuple[str, str, str]:
    """'fid <= baseline + 0.5' -> ('fid', 'max', 'baseline + 0.5')."""
    if not isinstance(v, str):
        raise _err(where, f"check must be a string like \"fid <= 12.0\", got {v!r}.")
    m = re.fullmatch(r"\s*(?P<metric>[^\s<>=!]+)\s*(?P<op>[<>=!]+)\s*(?P<rhs>.+?)\s*", v)
    if not m:
        raise _err(where, f"check = {v!r} is not '<metric> <= <bound>' or '<metric> >= <bound>'.")
    op = m.group("op")
    if op not in ("<=", ">="):
        raise _err(where, f"unsupported operator '{op}' in check = {v!r}. Use <= or >= "
                          "(bounds are inclusive).")
    return m.group("metric"), ("max" if op == "<=" else "min"), m.group("rhs")


def _parse_metric(v: Any, where: str) -> tuple[MetricRef, catalog.MetricPattern]:
    if not isinstance(v, str) or not v:
        raise _err(where, f"metric must be a non-empty string, got {v!r}.")
    ref = catalog.parse_address(v)
    pattern = catalog.find_pattern(ref)
    if pattern is None:
        raise _err(where, f"unknown metric '{v}'. Valid metrics: {', '.join(catalog.valid_names())}. "
                          "Kind fid may be written plainly (fid, recall); others as <kind>.<name>.")
    return ref, pattern


def _parse_rule(raw: Any, i: int, path: Path, gate_alpha: float) -> Rule:
    where = f"{path}: rule {i}"
    if not isinstance(raw, dict):
        raise _err(where, "each [[rule]] must be a table.")
    _check_keys(raw, RULE_KEYS, where)
    raw = dict(raw)
    if "check" in raw:
        if any(k in raw for k in ("metric", "min", "max")):
            raise _err(where, "use either check = \"...\" or metric + min/max, not both.")
        metric, side, rhs = _parse_check(raw.pop("check"), where)
        raw["metric"], raw[side] = metric, rhs
    if "metric" not in raw:
        raise _err(where, "missing 'metric' (e.g. metric = \"fid\") or 'check'.")
    ref, pattern = _parse_metric(raw["metric"], where)
    where = f"{path}: rule {i} ({ref.address})"
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise _err(where, f"name must be a string, got {name!r}.")
    if "regression" in raw:
        if raw["regression"] != "significant":
            raise _err(where, f"regression = {raw['regression']!r} is not supported; the only value is "
                              "\"significant\".")
        if "min" in raw or "max" in raw:
            raise _err(where, "a rule has either min/max bounds or regression = \"significant\"; "
                              "split it into two [[rule]] entries.")
        direction = raw.get("direction", pattern.direction)
        if direction is None:
            raise _err(where, f"'{ref.address}' has no natural direction; add direction = "
                              f"\"{catalog.LOWER}\" or \"{catalog.HIGHER}\".")
        if direction not in catalog.DIRECTIONS:
            raise _err(where, f"direction = {direction!r} must be \"{catalog.LOWER}\" or "
                              f"\"{catalog.HIGHER}\".")
        method = raw.get("method", DEFAULTS.method)
        if method not in METHODS:
            raise _err(where, f"method = {method!r} must be one of {', '.join(METHODS)}.")
        margin = _number(raw.get("margin", DEFAULTS.margin), where, "margin")
        if margin < 0:
            raise _err(where, f"margin = {margin} must be >= 0 (it is in the metric's units).")
        alpha = _alpha(raw["alpha"], where) if "alpha" in raw else gate_alpha
        word = "increase" if direction == catalog.LOWER else "decrease"
        return Rule(i, name or f"{ref.address}: no significant {word}", ref, significant=True,
                    direction=direction, alpha=alpha, margin=margin, method=method)
    for k in ("direction", "alpha", "margin", "method"):
        if k in raw:
            raise _err(where, f"'{k}' only applies to regression = \"significant\" rules.")
    lo = parse_bound(raw["min"], where, "min") if "min" in raw else None
    hi = parse_bound(raw["max"], where, "max") if "max" in raw else None
    if lo is None and hi is None:
        raise _err(where, "a rule needs max, min, check or regression = \"significant\".")
    if lo and hi and not lo.relative and not hi.relative and lo.value > hi.value:
        raise _err(where, f"min = {lo.text} is above max = {hi.text}; no value can pass.")
    parts = ([f">= {lo.text}"] if lo else []) + ([f"<= {hi.text}"] if hi else [])
    return Rule(i, name or f"{ref.address} {' and '.join(parts)}", ref, min=lo, max=hi)


def parse_config(data: dict[str, Any], path: Path) -> GateConfig:
    """Validate a parsed TOML document (see module docstring for the schema)."""
    _check_keys(data, TOP_KEYS, str(path))
    gate = data.get("gate", {})
    if not isinstance(gate, dict):
        raise _err(str(path), "[gate] must be a table.")
    _check_keys(gate, GATE_KEYS, f"{path}: [gate]")
    alpha = _alpha(gate["alpha"], f"{path}: [gate]") if "alpha" in gate else DEFAULTS.alpha
    base = gate.get("baseline", [])
    base = [base] if isinstance(base, str) else base
    if not isinstance(base, list) or not all(isinstance(b, str) for b in base):
        raise _err(f"{path}: [gate]", f"baseline must be a path or a list of paths, got {base!r}.")
    settings = gate.get("settings", {})
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        raise _err(f"{path}: [gate]", "settings must hold one table per result kind, e.g. "
                                      "[gate.settings.fid] extractor = \"inception\".")
    _check_keys(settings, catalog.KINDS, f"{path}: [gate.settings]")
    rules_raw = data.get("rule", [])
    if not isinstance(rules_raw, list) or not rules_raw:
        raise _err(str(path), "no [[rule]] entries. Add at least one, e.g. [[rule]] metric = \"fid\" "
                              "max = 12.0.")
    rules = tuple(_parse_rule(r, i, path, alpha) for i, r in enumerate(rules_raw, start=1))
    evaluate = data.get("evaluate", {})
    if not isinstance(evaluate, dict):
        raise _err(str(path), "[evaluate] must be a table.")
    _check_keys(evaluate, EVALUATE_KEYS, f"{path}: [evaluate]")
    # Baseline paths are relative to the config file, so the config works from any directory.
    baselines = tuple((path.parent / b) if not Path(b).is_absolute() else Path(b) for b in base)
    return GateConfig(path=path, rules=rules, baselines=baselines, alpha=alpha, settings=settings,
                      evaluate=evaluate, name=str(gate.get("name", "ambient-eval gate")))

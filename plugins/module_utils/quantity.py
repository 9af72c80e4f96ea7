# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes quantities (``500m``, ``2``, ``512Mi``, ``1e3``): the one
definition the collection uses.

- ``parse_quantity(value)``: the exact value as a ``Decimal``, read by the
  kubernetes client's ``kubernetes.utils.parse_quantity`` after a check of
  apimachinery's grammar (the client alone accepts ``NaN``, ``1_000``,
  ``1e3Mi`` and spaces, which the API server refuses), rounded up to nano
  precision as the API server does;
- ``canonical_quantity(value)``: the form the API server stores
  (``1000m`` -> ``1``, ``1024Mi`` -> ``1Gi``), so a re-apply compares equal;
- ``is_quantity(value)`` and ``quantity_error(value)``: the check and its one
  message, used by the role preflights (test ``neurallog.platform.quantity``),
  the service descriptions and the tenant validation.

The kubernetes client is imported lazily, and without running
``kubernetes/__init__.py`` (which imports the whole API client, ~0.4 s) when the
client is not loaded yet: its ``utils/quantity.py`` only needs ``decimal``.
Modules running on a target without the client fail with ``missing_library()``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import sys
from decimal import ROUND_CEILING, Decimal, localcontext

EXAMPLES = "500m, 2, 512Mi, 20Gi, 1e3"
# apimachinery's grammar: <signedNumber><suffix>, suffix binary, decimal SI or
# a decimal exponent. fullmatch, so a trailing newline is refused too.
_GRAMMAR = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)
_BINARY_BY_EXP = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}
_DECIMAL_BY_EXP = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}

_PARSE = []  # the client's parse_quantity, once loaded


class MissingKubernetesClient(ImportError):
    """The kubernetes Python client is not installed where this code runs."""


def _load_client_parser():
    """``kubernetes.utils.parse_quantity``, loaded as cheaply as possible."""
    if _PARSE:
        return _PARSE[0]
    function = None
    loaded = sys.modules.get("kubernetes.utils")
    if loaded is not None and hasattr(loaded, "parse_quantity"):
        function = loaded.parse_quantity
    else:
        try:
            import importlib.util
            import os

            spec = importlib.util.find_spec("kubernetes")  # does not run the package
            if spec is not None and spec.submodule_search_locations:
                for folder in spec.submodule_search_locations:
                    path = os.path.join(folder, "utils", "quantity.py")
                    if os.path.isfile(path):
                        file_spec = importlib.util.spec_from_file_location("_neurallog_k8s_quantity", path)
                        module = importlib.util.module_from_spec(file_spec)
                        file_spec.loader.exec_module(module)
                        function = module.parse_quantity
                        break
        except Exception:  # pylint: disable=broad-exception-caught
            function = None  # fall back to the plain import
    if function is None:
        try:
            from kubernetes.utils import parse_quantity as function
        except ImportError as exc:
            raise MissingKubernetesClient(missing_library(exc))
    _PARSE.append(function)
    return function


def missing_library(exc=None):
    """The message when the kubernetes client is missing."""
    return ("Kubernetes quantities are read with the kubernetes Python client, which is not installed "
            "for %s (pip install kubernetes)%s" % (sys.executable, ": %s" % exc if exc else ""))


def kubernetes_client_error():
    """``None`` when the client is importable, else the message to fail with."""
    try:
        _load_client_parser()
    except MissingKubernetesClient as exc:
        return str(exc)
    return None


def quantity_error(value):
    """The one message for a value that is not a quantity."""
    return "%r is not a Kubernetes quantity (a number with an optional suffix, e.g. %s)" % (value, EXAMPLES)


def _parts(value):
    """(Decimal value rounded up to nano precision, format) of a quantity."""
    if isinstance(value, bool) or value is None:
        raise ValueError(quantity_error(value))
    if isinstance(value, float):
        value = repr(value)
    text = value if isinstance(value, str) else str(value)
    match = _GRAMMAR.fullmatch(text)
    if not match:
        raise ValueError(quantity_error(value))
    suffix = match.group("suffix") or ""
    if suffix.endswith("i"):
        fmt = "binary"
    elif len(suffix) > 1 and suffix[0] in ("e", "E"):
        fmt = "exponent"
    else:
        fmt = "decimal"
    with localcontext() as ctx:
        ctx.prec = 60
        try:
            amount = Decimal(_load_client_parser()(text))
        except ValueError:  # pragma: no cover - the grammar already rules this out
            raise ValueError(quantity_error(value))
        # The API server keeps nano precision, rounding up.
        amount = amount.scaleb(9).to_integral_value(rounding=ROUND_CEILING).scaleb(-9)
    return amount, fmt


def parse_quantity(value):
    """The value of a quantity as a ``Decimal``; ``ValueError`` naming the value if invalid."""
    return _parts(value)[0]


def is_quantity(value, negative=False):
    """True when ``value`` is a quantity (and not below zero unless ``negative``)."""
    try:
        amount = parse_quantity(value)
    except ValueError:
        return False
    return negative or amount >= 0


def canonical_quantity(value):
    """A quantity written as the API server stores it (apimachinery's
    ``Quantity.String()``): ``'1000m'`` -> ``'1'``, ``'0.5'`` -> ``'500m'``,
    ``'1024Mi'`` -> ``'1Gi'``, ``'0.5Ki'`` -> ``'512'``, ``50`` -> ``'50'``."""
    amount, fmt = _parts(value)
    if amount == 0:
        return "0"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if fmt == "binary" and (amount < 1024 or amount != amount.to_integral_value()):
        fmt = "decimal"
    if fmt == "binary":
        number, exponent = int(amount), 0
        while number % 1024 == 0 and exponent < 6:
            number //= 1024
            exponent += 1
        return "%s%d%s" % (sign, number, _BINARY_BY_EXP[exponent])
    with localcontext() as ctx:
        ctx.prec = 60
        number, exponent = int(amount.scaleb(9)), -9
    while number % 10 == 0:
        number //= 10
        exponent += 1
    shift = exponent % 3
    if shift:
        number *= 10 ** shift
        exponent -= shift
    if fmt == "decimal" and exponent in _DECIMAL_BY_EXP:
        suffix = _DECIMAL_BY_EXP[exponent]
    else:
        suffix = "e%d" % exponent if exponent else ""
    return "%s%d%s" % (sign, number, suffix)


def canonical_resources(resources):
    """A container's ``resources`` (requests/limits) with every quantity canonical."""
    out = {}
    for section in ("requests", "limits"):
        values = (resources or {}).get(section) or {}
        if values:
            out[section] = dict((name, canonical_quantity(q)) for name, q in sorted(values.items()))
    return out

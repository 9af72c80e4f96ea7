# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Core service descriptions: merge, validate and normalise them.

One description per service (image key, replicas, resources, ports, env,
probes, autoscaling); the templates of the core_services role turn the
resolved list into Deployments, Services, ServiceAccounts and
PodDisruptionBudgets. Errors name the setting and what is allowed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from ansible_collections.neurallog.platform.plugins.module_utils.merge import merge
from ansible_collections.neurallog.platform.plugins.module_utils.quantity import parse_quantity

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SETTING = "core_services_services"


class ServiceError(ValueError):
    """A description is invalid; the message names the setting."""


def _fail(name, field, problem):
    raise ServiceError("%s.%s.%s: %s" % (SETTING, name, field, problem))


def _int(name, field, value, minimum, maximum=None):
    if isinstance(value, bool):
        _fail(name, field, "must be an integer, got %r" % (value,))
    try:
        number = int(value)
    except (TypeError, ValueError):
        _fail(name, field, "must be an integer, got %r" % (value,))
    if number < minimum or (maximum is not None and number > maximum):
        allowed = ">= %d" % minimum if maximum is None else "between %d and %d" % (minimum, maximum)
        _fail(name, field, "must be %s, got %d" % (allowed, number))
    return number


def _quantity(name, field, value):
    try:
        amount = parse_quantity(value)
    except ValueError as exc:
        _fail(name, field, str(exc))
    if amount < 0:
        _fail(name, field, "must not be negative, got %r" % (value,))
    return str(value)


def _resources(name, resources):
    if not isinstance(resources, dict):
        _fail(name, "resources", "must be a dict with requests and limits")
    out = {}
    for section in ("requests", "limits"):
        values = resources.get(section) or {}
        if not isinstance(values, dict):
            _fail(name, "resources.%s" % section, "must be a dict of cpu/memory")
        out[section] = {}
        for resource, value in sorted(values.items()):
            if resource not in ("cpu", "memory", "ephemeral-storage"):
                _fail(name, "resources.%s.%s" % (section, resource),
                      "unknown resource; allowed: cpu, memory, ephemeral-storage")
            out[section][resource] = _quantity(name, "resources.%s.%s" % (section, resource), value)
    for resource in ("cpu", "memory"):
        if resource not in out["requests"]:
            _fail(name, "resources.requests.%s" % resource,
                  "is required (the HPA and the scheduler need it)")
    return out


def _probe(name, field, probe, port):
    if not isinstance(probe, dict):
        _fail(name, field, "must be a dict (path, initial_delay_seconds, period_seconds)")
    path = str(probe.get("path", "/health"))
    if not path.startswith("/"):
        _fail(name, field + ".path", "must start with '/', got %r" % path)
    return {
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": _int(name, field + ".initial_delay_seconds",
                                    probe.get("initial_delay_seconds", 5), 0),
        "periodSeconds": _int(name, field + ".period_seconds", probe.get("period_seconds", 10), 1),
        "timeoutSeconds": _int(name, field + ".timeout_seconds", probe.get("timeout_seconds", 1), 1),
        "failureThreshold": _int(name, field + ".failure_threshold", probe.get("failure_threshold", 3), 1),
    }


def _autoscaling(name, autoscaling):
    autoscaling = autoscaling or {}
    if not isinstance(autoscaling, dict):
        _fail(name, "autoscaling", "must be a dict")
    out = {"enabled": bool(autoscaling.get("enabled", False))}
    if not out["enabled"]:
        return out
    out["min_replicas"] = _int(name, "autoscaling.min_replicas", autoscaling.get("min_replicas", 1), 1)
    out["max_replicas"] = _int(name, "autoscaling.max_replicas", autoscaling.get("max_replicas", 10), 1)
    if out["max_replicas"] < out["min_replicas"]:
        _fail(name, "autoscaling.max_replicas",
              "must be >= autoscaling.min_replicas (%d), got %d" % (out["min_replicas"], out["max_replicas"]))
    metrics = []
    for resource in ("cpu", "memory"):
        key = "%s_utilization" % resource
        if autoscaling.get(key) not in (None, "", 0):
            metrics.append({"resource": resource,
                            "utilization": _int(name, "autoscaling." + key, autoscaling[key], 1, 1000)})
    if not metrics:
        _fail(name, "autoscaling", "needs cpu_utilization and/or memory_utilization when enabled")
    out["metrics"] = metrics
    return out


def _vpa(name, vpa):
    vpa = vpa or {}
    if not isinstance(vpa, dict):
        _fail(name, "vpa", "must be a dict")
    out = {"enabled": bool(vpa.get("enabled", False))}
    if not out["enabled"]:
        return out
    mode = vpa.get("update_mode", "Auto")
    if mode not in ("Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"):
        _fail(name, "vpa.update_mode", "must be one of Off, Initial, Recreate, InPlaceOrRecreate, Auto, got %r" % (mode,))
    out["update_mode"] = mode
    for bound in ("min_allowed", "max_allowed"):
        values = vpa.get(bound) or {}
        out[bound] = dict((resource, _quantity(name, "vpa.%s.%s" % (bound, resource), value))
                          for resource, value in sorted(values.items()))
    return out


def _env(name, env):
    env = env or {}
    if not isinstance(env, dict):
        _fail(name, "env", "must be a dict of NAME: value")
    out = []
    for key, value in sorted(env.items()):
        if not ENV_RE.fullmatch(str(key)):
            _fail(name, "env.%s" % key, "is not a valid environment variable name")
        if isinstance(value, (dict, list)):
            _fail(name, "env.%s" % key, "must be a plain value, got %s" % type(value).__name__)
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append({"name": str(key), "value": str(value)})
    return out


def _ca_files(wanted, credentials):
    """Volumes, mounts and environment that give a service the CA
    certificates of the credentials it uses (``ca`` of a credential:
    ``key`` in its Secret, ``path`` of the file in the container, ``env``
    naming that path)."""
    volumes, mounts, env = [], [], []
    for name in sorted(set(wanted)):
        ca = credentials[name].get("ca")
        if not ca:
            continue
        for field in ("key", "path", "env"):
            if not ca.get(field):
                raise ServiceError("core_services_credential_secrets.%s.ca.%s: is required" % (name, field))
        path = str(ca["path"])
        if not path.startswith("/") or path.endswith("/"):
            raise ServiceError("core_services_credential_secrets.%s.ca.path: must be an absolute file path, got %r"
                               % (name, path))
        volume = "%s-ca" % name
        volumes.append({"name": volume, "secret": {
            "secretName": credentials[name]["secret"], "defaultMode": 0o444,
            "items": [{"key": str(ca["key"]), "path": posixpath.basename(path)}]}})
        mounts.append({"name": volume, "mountPath": posixpath.dirname(path), "readOnly": True})
        env.append({"name": str(ca["env"]), "value": path})
    return volumes, mounts, env


def resolve_services(services, defaults=None, overrides=None, image_keys=None, credentials=None, extras=None):
    """Sorted list of resolved service descriptions.

    ``services``: name to description; ``defaults``: merged under every one;
    ``overrides``: name to partial description merged over (inventories);
    ``image_keys``: the keys of neurallog_image_refs; ``credentials``:
    credential name to {secret, env} (DATABASE_URL …); ``extras``: service
    name to configuration another setting gives it ({setting, env, volumes,
    volume_mounts, annotations}; e.g. OIDC for auth-service)."""
    if not isinstance(services, dict) or not services:
        raise ServiceError("%s: must be a non-empty dict of service name to description" % SETTING)
    overrides = overrides or {}
    if not isinstance(overrides, dict):
        raise ServiceError("core_services_overrides: must be a dict of service name to description")
    unknown = sorted(set(overrides) - set(services))
    if unknown:
        raise ServiceError("core_services_overrides: unknown service(s) %s; known: %s"
                           % (", ".join(unknown), ", ".join(sorted(services))))
    credentials = credentials or {}
    extras = extras or {}
    resolved = []
    for name in sorted(services):
        if not NAME_RE.fullmatch(str(name)) or len(name) > 52:
            raise ServiceError("%s: %r is not a valid name (lowercase letters, digits and '-', at most 52)"
                               % (SETTING, name))
        description = merge(merge(defaults or {}, services[name] or {}), overrides.get(name) or {})
        if not description.get("enabled", True):
            continue
        image = str(description.get("image", name))
        if image_keys is not None and image not in image_keys:
            _fail(name, "image", "%r is not a key of neurallog_images; known: %s"
                  % (image, ", ".join(sorted(image_keys))))
        port = _int(name, "container_port", description.get("container_port", 8080), 1, 65535)
        wanted = description.get("credentials") or []
        if not isinstance(wanted, list):
            _fail(name, "credentials", "must be a list")
        for credential in wanted:
            if credential not in credentials:
                _fail(name, "credentials", "%r is unknown; allowed: %s"
                      % (credential, ", ".join(sorted(credentials))))
        secret_env = [
            {"name": credentials[c]["env"],
             "valueFrom": {"secretKeyRef": {"name": credentials[c]["secret"], "key": credentials[c].get("key", "url")}}}
            for c in sorted(set(wanted))
        ]
        ca_volumes, ca_mounts, ca_env = _ca_files(wanted, credentials)
        autoscaling = _autoscaling(name, description.get("autoscaling"))
        pdb = description.get("pdb_max_unavailable", 1)
        extra = extras.get(name) or {}
        resolved.append({
            "name": name,
            "image": image,
            "replicas": _int(name, "replicas", description.get("replicas", 1), 0),
            "container_port": port,
            "service_port": _int(name, "service_port", description.get("service_port", 80), 1, 65535),
            "resources": _resources(name, description.get("resources") or {}),
            "env": secret_env + ca_env + list(extra.get("env") or []) + _env(name, description.get("env")),
            "volumes": ca_volumes + list(extra.get("volumes") or []),
            "volume_mounts": ca_mounts + list(extra.get("volume_mounts") or []),
            "annotations": dict(extra.get("annotations") or {}),
            "credentials": sorted(set(wanted)),
            "readiness_probe": _probe(name, "readiness_probe", description.get("readiness_probe") or {}, port),
            "liveness_probe": _probe(name, "liveness_probe", description.get("liveness_probe") or {}, port),
            "autoscaling": autoscaling,
            "vpa": _vpa(name, description.get("vpa")),
            "pdb_max_unavailable": _int(name, "pdb_max_unavailable", pdb, 0) if pdb is not None else None,
            "metrics_path": str(description.get("metrics_path", "/metrics")),
        })
    names = [svc["name"] for svc in resolved]
    for name, extra in sorted(extras.items()):
        if name not in names:
            raise ServiceError("%s: %r is not an enabled core service; enabled: %s"
                               % (extra.get("setting", "extras"), name, ", ".join(names)))
    return resolved

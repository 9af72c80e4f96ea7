# -*- coding: utf-8 -*-
# Copyright: NeuralLog platform engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a rendered pod's containers with docker, the way a kubelet would:
the pod's image, command, args and environment; its ConfigMap and Secret
volumes as files (Secrets group-owned by fsGroup, mode defaultMode | 0040),
emptyDirs and the data volume as folders of the fsGroup; runAsUser/Group,
fsGroup as a supplementary group, read-only root file system, no
capabilities, no privilege escalation. Init containers run first, to
completion. Every container joins one internal docker network and is reached
under the names its Services give it; no port is published."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import time
import uuid

PREFIX = os.environ.get("NEURALLOG_CLUSTER_PREFIX", "")


def docker(*args, check=True, timeout=600, stdin=None):
    result = subprocess.run(["docker"] + list(args), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError("docker %s failed (%d):\n%s%s" % (" ".join(args[:3]), result.returncode,
                                                               result.stdout[-3000:], result.stderr[-3000:]))
    return result


class Container:
    """A started container: exec, logs, readiness."""

    def __init__(self, name, spec=None):
        self.name = name
        self.spec = spec or {}

    def exec(self, *command, check=True, user=None, env=None, stdin=None, timeout=120):
        args = ["exec"]
        if stdin is not None:
            args.append("-i")
        if user:
            args += ["--user", user]
        for key, value in sorted((env or {}).items()):
            args += ["-e", "%s=%s" % (key, value)]
        return docker(*(args + [self.name] + list(command)), check=check, stdin=stdin, timeout=timeout)

    def logs(self):
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self):
        return docker("inspect", "--format", "{{.State.Running}}", self.name, check=False).stdout.strip() == "true"

    def probe(self, probe_name="readinessProbe"):
        """Runs the container's exec probe once; True when it passes."""
        command = self.spec[probe_name]["exec"]["command"]
        return self.exec(*command, check=False).returncode == 0

    def wait(self, condition, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.running():
                raise AssertionError("%s exited before %s:\n%s" % (self.name, what, self.logs()[-6000:]))
            if condition():
                return
            time.sleep(2)
        raise AssertionError("%s: not %s after %ss:\n%s" % (self.name, what, timeout, self.logs()[-6000:]))

    def wait_exit(self, timeout):
        """Waits until the container stopped; returns its exit code (fails if it still runs)."""
        deadline = time.time() + timeout
        while self.running():
            assert time.time() < deadline, "%s still runs after %ss:\n%s" % (self.name, timeout, self.logs()[-3000:])
            time.sleep(1)
        return int(docker("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip())

    def wait_ready(self, timeout=300):
        self.wait(self.probe, timeout, "ready (readinessProbe)")


class Launcher:
    """Starts rendered pods (StatefulSet templates) and removes them afterwards."""

    def __init__(self, images, rendered, network, workdir):
        self.images = images
        self.rendered = rendered
        self.network = network
        self.workdir = workdir
        self.containers = []

    # -- volumes -------------------------------------------------------
    def _write_files(self, path, files, mode, gid):
        os.makedirs(path)
        os.chmod(path, 0o755)
        for key, value in files.items():
            target = os.path.join(path, key)
            with open(target, "w") as handle:
                handle.write(value)
            os.chown(target, 0, gid)
            os.chmod(target, mode)

    def _volumes(self, pod_name, pod, overrides, keep):
        """Volume name to host path."""
        fs_group = pod.get("securityContext", {}).get("fsGroup", 0)
        paths = dict(keep or {})
        base = os.path.join(self.workdir, "%s-%s" % (pod_name, uuid.uuid4().hex[:6]))
        os.makedirs(base)
        for volume in pod["volumes"] + [{"name": "data", "persistentVolumeClaim": {}}]:
            name = volume["name"]
            if name in paths:
                continue
            path = os.path.join(base, name)
            if "configMap" in volume:
                data = dict(self.rendered.get("ConfigMap", volume["configMap"]["name"])["data"])
                data.update(overrides.get(volume["configMap"]["name"], {}))
                self._write_files(path, data, volume["configMap"].get("defaultMode", 0o644), 0)
            elif "secret" in volume:
                values = self.rendered.secret(volume["secret"]["secretName"])
                items = volume["secret"].get("items")
                if items:
                    values = dict((item["path"], values[item["key"]]) for item in items)
                mode = volume["secret"].get("defaultMode", 0o644) | (0o040 if fs_group else 0)
                self._write_files(path, values, mode, fs_group)
            else:  # emptyDir, or the volume claim: a folder of the fsGroup
                os.makedirs(path)
                os.chown(path, 0, fs_group)
                os.chmod(path, 0o2777 if "emptyDir" in volume else 0o2775)
            paths[name] = path
        return paths

    # -- containers ----------------------------------------------------
    def _run(self, name, container, pod, pod_name, volumes, aliases, env_overrides, detach):
        security = dict(pod.get("securityContext", {}))
        security.update(container.get("securityContext", {}))
        args = ["run", "--name", name, "--hostname", pod_name, "--network", self.network]
        args += ["-d"] if detach else ["--rm"]
        for alias in aliases:
            args += ["--network-alias", alias]
        if "runAsUser" in security:
            args += ["--user", "%s:%s" % (security["runAsUser"], security.get("runAsGroup", security["runAsUser"]))]
        if security.get("fsGroup"):
            args += ["--group-add", str(security["fsGroup"])]
        if security.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if "ALL" in security.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", "ALL"]
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        env = {}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[item["name"]] = pod_name
            else:
                raise AssertionError("cannot emulate env %r" % (item,))
        env.update(env_overrides or {})
        for key, value in sorted(env.items()):
            args += ["-e", "%s=%s" % (key, value)]
        for mount in container.get("volumeMounts", []):
            source = volumes[mount["name"]]
            if mount.get("subPath"):
                source = os.path.join(source, mount["subPath"])
            args += ["-v", "%s:%s%s" % (source, mount["mountPath"], ":ro" if mount.get("readOnly") else "")]
        command = list(container.get("command", []))
        if command:
            args += ["--entrypoint", command[0]]
        args.append(container["image"])
        args += command[1:] + list(container.get("args", []))
        return docker(*args, timeout=900)

    def start(self, statefulset, ordinal=0, aliases=(), configmaps=None, env=None, keep_volumes=None):
        """Starts pod ``<statefulset>-<ordinal>`` (its init containers first).
        ``configmaps``: ConfigMap name to data overrides; ``env``: variables
        overridden in every container; ``keep_volumes``: volumes (name to
        host path) of an earlier pod to reuse, e.g. its data volume."""
        pod = self.rendered.get("StatefulSet", statefulset)["spec"]["template"]["spec"]
        pod_name = "%s-%d" % (statefulset, ordinal)
        volumes = self._volumes(pod_name, pod, configmaps or {}, keep_volumes)
        suffix = uuid.uuid4().hex[:6]
        for init in pod.get("initContainers", []):
            self._run("%simg-%s-%s-%s" % (PREFIX, pod_name, init["name"], suffix), init, pod, pod_name, volumes,
                      (), env, detach=False)
        main = pod["containers"][0]
        name = "%simg-%s-%s" % (PREFIX, pod_name, suffix)
        self.containers.append(name)
        self._run(name, main, pod, pod_name, volumes, aliases, env, detach=True)
        started = Container(name, main)
        started.volumes = volumes
        return started

    def run_image(self, key, name, args=(), aliases=(), extra=()):
        """Starts the image ``key`` (of neurallog_images) with docker run options ``extra``."""
        name = "%simg-%s-%s" % (PREFIX, name, uuid.uuid4().hex[:6])
        self.containers.append(name)
        options = ["run", "-d", "--name", name, "--network", self.network]
        for alias in aliases:
            options += ["--network-alias", alias]
        docker(*(options + list(extra) + [self.images[key]] + list(args)))
        return Container(name)

    def stop(self, container):
        docker("rm", "-f", container.name, check=False)

    def remove_all(self):
        for name in self.containers:
            docker("rm", "-f", "-v", name, check=False)
        self.containers = []

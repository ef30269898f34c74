#!/usr/bin/env python3
"""Project rules for the deployment artifacts, beyond what schemas and linters know.

Run by .ci/validate-deploy (needs PyYAML; the trace.pb check also needs opentelemetry-proto).
Usage: validate_deploy_policy.py REPO_ROOT CHECK...   CHECK: dockerfile | k8s | compose | consistency
Prints one summary line per check, after its problems (indented, one per line). Exit 1 if any check failed.
"""
import glob
import os
import re
import shlex
import subprocess
import sys

import yaml

# The OTLP_BRIDGE_* variables every build has (the fixed CLI contract the README documents). The binary may have more:
# known_env() adds those its clap definitions in src/ declare.
CONTRACT_ENV = {
    "OTLP_BRIDGE_LISTEN",
    "OTLP_BRIDGE_BACKEND",
    "OTLP_BRIDGE_METRICS_LISTEN",
    "OTLP_BRIDGE_MAX_BODY_BYTES",
    "OTLP_BRIDGE_BACKEND_HEADER",
    "OTLP_BRIDGE_CORS_ALLOWED_ORIGINS",
    "OTLP_BRIDGE_MEMORY_LIMIT_MIB",
    # Read by src/config/resolve.rs, not declared on clap (their list format differs from the flags').
    "OTLP_BRIDGE_RESOURCE_ATTRIBUTES",
    "OTLP_BRIDGE_RESOURCE_ATTRIBUTES_IF_MISSING",
}
# Assumed default of --memory-limit-mib when a manifest does not set it (the code chooses the number).
DEFAULT_MEMORY_LIMIT_MIB = 20
# "Well below the container limit": at most this share of it.
MAX_SHARE_OF_CONTAINER_LIMIT = 0.5
KNOWN_ENV = set(CONTRACT_ENV)


def known_env(root):
    """The contract's variables plus every `env = "OTLP_BRIDGE_..."` in src/ (clap attributes) and every variable
    src/config/resolve.rs reads itself (a `"OTLP_BRIDGE_..."` literal there: the resource attribute lists)."""
    found = set()
    for path in glob.glob(os.path.join(root, "src", "**", "*.rs"), recursive=True):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        found |= set(re.findall(r'env\s*=\s*"(OTLP_BRIDGE_[A-Z0-9_]+)"', text))
        if os.path.basename(path) == "resolve.rs":
            found |= set(re.findall(r'"(OTLP_BRIDGE_[A-Z0-9_]+)"', text))
    KNOWN_ENV.update(found)
    return found


BRIDGE_IMAGE = re.compile(r"(^|/)otlp-bridge(:|@|$)")


class Checker:
    def __init__(self, name):
        self.name = name
        self.problems = []
        self.facts = []

    def fail(self, msg):
        self.problems.append(msg)

    def expect(self, cond, msg):
        if not cond:
            self.fail(msg)
        return cond

    def report(self):
        for p in self.problems:
            print(f"  {self.name}: {p}")
        status = "ok  " if not self.problems else "FAIL"
        detail = "; ".join(self.facts)
        print(f"{status} policy/{self.name}: {detail}" + (f" ({len(self.problems)} problem(s))" if self.problems else ""), flush=True)
        return not self.problems


# ---------------------------------------------------------------------------------------------------------- Dockerfile
def dockerfile_instructions(path):
    """(instruction, argument text) per logical line: continuations joined, comments and parser directives skipped."""
    out, buf = [], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue  # comment lines inside a continuation are dropped by the Docker parser too
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def parse_env(arg):
    """ENV k=v k2=v2 (or the legacy `ENV k v`) -> dict."""
    words = shlex.split(arg)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) for w in words)


def check_dockerfile(root):
    c = Checker("dockerfile")
    ins = dockerfile_instructions(os.path.join(root, "Dockerfile"))
    stages, current = [], None
    for word, arg in ins:
        if word == "FROM":
            current = {"from": arg, "ins": []}
            stages.append(current)
        elif current is not None:
            current["ins"].append((word, arg))
    if not c.expect(len(stages) >= 2, "expected a multi-stage build (builder + runtime)"):
        return c.report()
    builder, final = stages[0], stages[-1]
    c.expect(builder["from"].split()[0].startswith("rust:") or "rust:" in builder["from"], "builder stage is not FROM rust:*")
    c.expect(any(w == "RUN" and "cargo build" in a and "--release" in a and "--locked" in a for w, a in builder["ins"]),
             "builder does not run `cargo build --release --locked`")
    c.expect("distroless" in final["from"] and ":nonroot" in final["from"],
             f"runtime stage should be a distroless :nonroot image, is {final['from']!r}")
    users = [a for w, a in final["ins"] if w == "USER"]
    if c.expect(users, "runtime stage sets no USER"):
        uid = users[-1].split(":")[0]
        c.expect(uid.isdigit() and int(uid) != 0, f"USER must be a numeric non-root uid (runAsNonRoot), is {uid!r}")
    exposed = {p.split("/")[0] for w, a in final["ins"] if w == "EXPOSE" for p in a.split()}
    c.expect({"4318", "8888"} <= exposed, f"EXPOSE must list 4318 and 8888, has {sorted(exposed)}")
    env = {}
    for w, a in final["ins"]:
        if w == "ENV":
            env.update(parse_env(a))
    c.expect(env.get("OTLP_BRIDGE_LISTEN") == "0.0.0.0:4318", "ENV OTLP_BRIDGE_LISTEN=0.0.0.0:4318 missing")
    c.expect(env.get("OTLP_BRIDGE_METRICS_LISTEN") == "0.0.0.0:8888", "ENV OTLP_BRIDGE_METRICS_LISTEN=0.0.0.0:8888 missing")
    for k in env:
        c.expect(not k.startswith("OTLP_BRIDGE_") or k in KNOWN_ENV, f"unknown variable {k}")
    entry = [a for w, a in final["ins"] if w == "ENTRYPOINT"]
    c.expect(entry and entry[-1].replace(" ", "") == '["/usr/local/bin/otlp-bridge"]',
             'ENTRYPOINT must be ["/usr/local/bin/otlp-bridge"] (exec form: there is no shell)')
    c.expect(any(w == "COPY" and "/usr/local/bin/otlp-bridge" in a for w, a in final["ins"]),
             "binary is not copied to /usr/local/bin/otlp-bridge")
    for w, a in final["ins"]:
        c.expect(w != "RUN", "RUN in the runtime stage: distroless has no shell")
        c.expect(not (w == "HEALTHCHECK" and "CMD-SHELL" in a) and not (w == "HEALTHCHECK" and a.startswith("CMD ") and "[" not in a),
                 "HEALTHCHECK needing a shell: distroless has none")
    c.facts.append(f"{len(stages)} stages, runtime {final['from']}, USER {users[-1] if users else '-'}, "
                   f"EXPOSE {' '.join(sorted(exposed))}, listen 0.0.0.0")
    return c.report()


# ------------------------------------------------------------------------------------------------------------- k8s
def mib(quantity):
    """Kubernetes memory quantity -> MiB (float)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?|[kE]|)", str(quantity))
    if not m:
        raise ValueError(f"unsupported quantity {quantity!r}")
    n, unit = float(m.group(1)), m.group(2)
    factor = {"": 1 / 2**20, "k": 1e3 / 2**20, "K": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20, "T": 1e12 / 2**20,
              "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}[unit]
    return n * factor


def load_docs(pattern):
    docs = []
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((path, d))
    return docs


def container_env(container, configmaps):
    env = {}
    for src in container.get("envFrom", []):
        ref = src.get("configMapRef")
        if ref:
            env.update(configmaps.get(ref["name"], {}))
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
    return env


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def check_bridge_container(c, where, pod_spec, container, configmaps):
    sc = {**(pod_spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
    c.expect(sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot is not true")
    c.expect(sc.get("runAsUser") == 65532, f"{where}: runAsUser is not 65532")
    csc = container.get("securityContext") or {}
    c.expect(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem is not true")
    c.expect(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation is not false")
    c.expect((csc.get("capabilities") or {}).get("drop") == ["ALL"], f"{where}: capabilities.drop is not [ALL]")
    c.expect((sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: seccompProfile is not RuntimeDefault")
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        get = (container.get(probe) or {}).get("httpGet") or {}
        c.expect(get.get("path") == path and port_number(container, get.get("port")) == 8888,
                 f"{where}: {probe} must be httpGet {path} on port 8888")
    res = container.get("resources") or {}
    c.expect("cpu" in (res.get("requests") or {}) and "memory" in (res.get("requests") or {}),
             f"{where}: resources.requests needs cpu and memory")
    limit = (res.get("limits") or {}).get("memory")
    env = container_env(container, configmaps)
    for k in env:
        c.expect(not k.startswith("OTLP_BRIDGE_") or k in KNOWN_ENV, f"{where}: unknown variable {k}")
    c.expect(env.get("OTLP_BRIDGE_LISTEN", "").startswith("0.0.0.0:"), f"{where}: OTLP_BRIDGE_LISTEN is not set to 0.0.0.0:PORT")
    c.expect(env.get("OTLP_BRIDGE_METRICS_LISTEN") == "0.0.0.0:8888", f"{where}: OTLP_BRIDGE_METRICS_LISTEN is not 0.0.0.0:8888")
    c.expect(env.get("OTLP_BRIDGE_BACKEND"), f"{where}: OTLP_BRIDGE_BACKEND is not set")
    if c.expect(limit is not None, f"{where}: no memory limit"):
        bridge_mib = int(env.get("OTLP_BRIDGE_MEMORY_LIMIT_MIB", DEFAULT_MEMORY_LIMIT_MIB))
        c.expect("OTLP_BRIDGE_MEMORY_LIMIT_MIB" in env, f"{where}: set OTLP_BRIDGE_MEMORY_LIMIT_MIB explicitly")
        c.expect(bridge_mib <= MAX_SHARE_OF_CONTAINER_LIMIT * mib(limit),
                 f"{where}: OTLP_BRIDGE_MEMORY_LIMIT_MIB={bridge_mib} is not well below the container limit {limit}")
        c.facts.append(f"{where}: memory limit {bridge_mib} MiB of {limit}")
    # Every file the bridge reads or writes must be on a mounted volume: the root filesystem is read-only, so a queue
    # directory on it fails at start, and a certificate or token path outside a mount never exists.
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts = {m["mountPath"].rstrip("/"): m for m in container.get("volumeMounts", [])}

    def mount_of(path):
        for mp, m in mounts.items():
            if path == mp or path.startswith(mp + "/"):
                return m
        return None

    for var in ("OTLP_BRIDGE_QUEUE_DIR", "OTLP_BRIDGE_TLS_CERT", "OTLP_BRIDGE_TLS_KEY", "OTLP_BRIDGE_TLS_CLIENT_CA",
                "OTLP_BRIDGE_AUTH_TOKEN_FILE"):
        if var not in env:
            continue
        m = mount_of(env[var])
        if not c.expect(m is not None, f"{where}: {var}={env[var]} is on no volumeMount (read-only root filesystem)"):
            continue
        c.expect("subPath" not in m, f"{where}: {var} is mounted with subPath, which never sees a Secret update")
        vol = volumes.get(m["name"]) or {}
        c.expect(m["name"] in volumes, f"{where}: volumeMount {m['name']} has no volume")
        if var == "OTLP_BRIDGE_QUEUE_DIR":
            c.expect(not m.get("readOnly"), f"{where}: the queue volume is mounted read-only")
            size = (vol.get("emptyDir") or {}).get("sizeLimit")
            if "emptyDir" in vol and c.expect(size is not None, f"{where}: the queue's emptyDir has no sizeLimit"):
                qmax = int(env.get("OTLP_BRIDGE_QUEUE_MAX_BYTES", 256 * 2**20))
                c.expect(qmax < mib(size) * 2**20,
                         f"{where}: OTLP_BRIDGE_QUEUE_MAX_BYTES={qmax} does not fit the emptyDir sizeLimit {size}")
                c.facts.append(f"{where}: queue {qmax >> 20} MiB in emptyDir {size}")


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_k8s(root):
    c = Checker("k8s")
    for folder in sorted(glob.glob(os.path.join(root, "k8s", "*/"))):
        name = os.path.basename(os.path.normpath(folder))
        docs = load_docs(os.path.join(folder, "*.y*ml"))
        for path, d in docs:
            c.expect("apiVersion" in d and "kind" in d,
                     f"{os.path.relpath(path, root)}: not a Kubernetes object (kubectl apply -f {name} would fail)")
            c.expect("namespace" not in d.get("metadata", {}),
                     f"{os.path.relpath(path, root)}: hard-coded namespace (kubectl apply -n would conflict)")
        kinds = {}
        for _, d in docs:
            kinds.setdefault(d.get("kind"), []).append(d)
        configmaps = {d["metadata"]["name"]: {k: str(v) for k, v in (d.get("data") or {}).items()}
                      for d in kinds.get("ConfigMap", [])}
        bridges = 0
        for dep in kinds.get("Deployment", []):
            tmpl = dep["spec"]["template"]
            pod = tmpl["spec"]
            c.expect(labels_match(dep["spec"]["selector"].get("matchLabels"), tmpl["metadata"].get("labels", {})),
                     f"{name}/{dep['metadata']['name']}: selector does not match the pod labels")
            ann = tmpl["metadata"].get("annotations", {})
            for containers in (pod.get("containers", []), pod.get("initContainers", [])):
                for ctr in containers:
                    if not BRIDGE_IMAGE.search(ctr.get("image", "")):
                        continue
                    bridges += 1
                    where = f"{name}/{dep['metadata']['name']}/{ctr['name']}"
                    if ctr in pod.get("initContainers", []):
                        c.expect(ctr.get("restartPolicy") == "Always", f"{where}: an init container that is not a native sidecar")
                    check_bridge_container(c, where, pod, ctr, configmaps)
                    c.expect(ann.get("prometheus.io/scrape") == "true" and str(ann.get("prometheus.io/port")) == "8888"
                             and ann.get("prometheus.io/path") == "/metrics",
                             f"{where}: prometheus.io/scrape, port 8888, path /metrics annotations missing")
            for ctr in pod.get("containers", []) + pod.get("initContainers", []):
                for src in ctr.get("envFrom", []):
                    ref = (src.get("configMapRef") or {}).get("name")
                    c.expect(ref is None or ref in configmaps, f"{name}: ConfigMap {ref} is not in the folder")
        c.expect(bridges >= 1, f"{name}: no otlp-bridge container")
        if name == "gateway":
            for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"):
                c.expect(kind in kinds, f"gateway: no {kind}")
            pods = [d["spec"]["template"] for d in kinds.get("Deployment", [])]
            deployments = {d["metadata"]["name"] for d in kinds.get("Deployment", [])}
            for hpa in kinds.get("HorizontalPodAutoscaler", []):
                c.expect(hpa["apiVersion"] == "autoscaling/v2", "gateway: HPA is not autoscaling/v2")
                ref = hpa["spec"]["scaleTargetRef"]
                c.expect(ref["kind"] == "Deployment" and ref["name"] in deployments, "gateway: HPA targets no Deployment here")
                c.expect(hpa["spec"].get("minReplicas", 1) >= 2, "gateway: HPA minReplicas < 2 leaves the PDB nothing to keep")
            for d in kinds.get("Deployment", []):
                c.expect("replicas" not in d["spec"], f"gateway: {d['metadata']['name']} sets replicas although an HPA owns it")
            for pdb in kinds.get("PodDisruptionBudget", []):
                c.expect(any(labels_match(pdb["spec"]["selector"].get("matchLabels"), p["metadata"]["labels"]) for p in pods),
                         "gateway: PDB selects no pod")
            for svc in kinds.get("Service", []):
                c.expect(any(labels_match(svc["spec"]["selector"], p["metadata"]["labels"]) for p in pods),
                         "gateway: Service selects no pod")
                names = {p.get("name") for t in pods for ctr in t["spec"]["containers"] for p in ctr.get("ports", [])}
                for p in svc["spec"]["ports"]:
                    c.expect(isinstance(p.get("targetPort"), int) or p.get("targetPort") in names,
                             f"gateway: Service port {p.get('name')} targets unknown port {p.get('targetPort')}")
                c.expect(any(p["port"] == 4318 for p in svc["spec"]["ports"]), "gateway: Service does not expose 4318")
            # A gateway is exposed to many clients: only the OTLP and admin ports are open to the network.
            policies = kinds.get("NetworkPolicy", [])
            c.expect(policies, "gateway: no NetworkPolicy")
            for np in policies:
                spec = np["spec"]
                c.expect(any(labels_match(spec["podSelector"].get("matchLabels"), p["metadata"]["labels"]) for p in pods),
                         "gateway: NetworkPolicy selects no pod")
                c.expect("Ingress" in spec.get("policyTypes", []), "gateway: NetworkPolicy does not govern ingress")
                ports = set()
                for rule in spec.get("ingress", []):
                    c.expect(rule.get("ports"), "gateway: a NetworkPolicy ingress rule admits every port")
                    for p in rule.get("ports", []):
                        ports.add(next((port_number(ctr, p["port"]) for t in pods for ctr in t["spec"]["containers"]
                                        if port_number(ctr, p["port"]) is not None), p["port"]))
                c.expect(ports == {4318, 8888}, f"gateway: NetworkPolicy admits ports {sorted(map(str, ports))}, not 4318 and 8888")
        c.facts.append(f"{name}: {len(docs)} objects")
    return c.report()


# --------------------------------------------------------------------------------------------------------- compose
def check_compose(root):
    c = Checker("compose")
    files = [["docker-compose.yaml"]] + [["docker-compose.yaml", os.path.basename(p)]
                                         for p in sorted(glob.glob(os.path.join(root, "compose", "docker-compose.*.yaml")))]
    for fs in files:
        args = ["docker-compose", "--project-directory", os.path.join(root, "compose")]
        for f in fs:
            args += ["-f", os.path.join(root, "compose", f)]
        out = subprocess.run(args + ["config"], capture_output=True, text=True)
        if not c.expect(out.returncode == 0, f"{'+'.join(fs)}: docker-compose config failed: {out.stderr.strip()}"):
            continue
        cfg = yaml.safe_load(out.stdout)
        svcs = cfg["services"]
        bridge = [n for n, s in svcs.items() if "build" in s or BRIDGE_IMAGE.search(s.get("image", ""))]
        if not c.expect(bridge, f"{'+'.join(fs)}: no bridge service"):
            continue
        b = svcs[bridge[0]]
        env = b.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        for k in env:
            c.expect(not k.startswith("OTLP_BRIDGE_") or k in KNOWN_ENV, f"{'+'.join(fs)}: unknown variable {k}")
        c.expect(env.get("OTLP_BRIDGE_LISTEN", "0.0.0.0:4318").startswith("0.0.0.0:"), f"{'+'.join(fs)}: bridge not on 0.0.0.0")
        backends = [u.strip() for u in str(env.get("OTLP_BRIDGE_BACKEND", "")).split(",") if u.strip()]
        c.expect(backends, f"{'+'.join(fs)}: bridge has no OTLP_BRIDGE_BACKEND")
        for u in backends:
            m = re.fullmatch(r"https?://([^:/]+):(\d+)/?", u)
            c.expect(u == "debug" or (m and m.group(1) in svcs), f"{'+'.join(fs)}: backend {u} is not a service of this file")
        c.expect("healthcheck" not in b or b["healthcheck"].get("disable"), f"{'+'.join(fs)}: bridge healthcheck needs a shell")
        if "mem_limit" in b:
            lim = b["mem_limit"]
            lim_mib = mib(str(lim).upper().replace("M", "Mi").replace("G", "Gi")) if isinstance(lim, str) else lim / 2**20
            bridge_mib = int(env.get("OTLP_BRIDGE_MEMORY_LIMIT_MIB", DEFAULT_MEMORY_LIMIT_MIB))
            c.expect(bridge_mib <= MAX_SHARE_OF_CONTAINER_LIMIT * lim_mib,
                     f"{'+'.join(fs)}: memory limit {bridge_mib} MiB not well below mem_limit {lim}")
        for n, s in svcs.items():
            for v in s.get("volumes", []):
                src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
                c.expect(not src.startswith("/") or os.path.exists(src), f"{'+'.join(fs)}: {n} mounts missing {src}")
        c.facts.append(f"{'+'.join(fs)}: {len(svcs)} services, backends {','.join(backends)}")
    with open(os.path.join(root, "compose", "otelcol.yaml"), encoding="utf-8") as f:
        col = yaml.safe_load(f)
    defined = {kind: set(col.get(kind) or {}) for kind in ("receivers", "processors", "exporters")}
    for pname, p in col["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in p.get(kind, []):
                c.expect(comp in defined[kind], f"otelcol.yaml: pipeline {pname} uses undefined {kind[:-1]} {comp}")
    c.expect(col["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].startswith("0.0.0.0:"),
             "otelcol.yaml: OTLP gRPC receiver must bind 0.0.0.0 to be reachable from the bridge")
    c.facts.append("otelcol.yaml pipelines consistent")
    return c.report()


# ----------------------------------------------------------------------------------------------------- consistency
def check_consistency(root):
    c = Checker("consistency")
    # The k8s sidecar demo embeds compose/sender.sh (kubectl apply -f dir cannot read files outside the objects).
    with open(os.path.join(root, "compose", "sender.sh"), encoding="utf-8") as f:
        sender = f.read()
    embedded = [d for _, d in load_docs(os.path.join(root, "k8s", "sidecar", "*.yaml"))
                if d.get("kind") == "ConfigMap" and "sender.sh" in (d.get("data") or {})]
    if c.expect(embedded and embedded[0]["data"]["sender.sh"] == sender,
                "k8s/sidecar ConfigMap demo-app-script differs from compose/sender.sh (copy it over)"):
        c.facts.append("k8s sidecar's sender.sh identical to compose's")
    # Variable names used anywhere in the deployment files and docs are ones the binary knows (contract + src/).
    names = set()
    for pattern in ("docs/*.md", "compose/*", "k8s/*/*.yaml", "Dockerfile"):
        for path in glob.glob(os.path.join(root, pattern)):
            with open(path, encoding="utf-8", errors="replace") as f:
                names |= set(re.findall(r"\bOTLP_BRIDGE_[A-Z_]*[A-Z]", f.read()))
    # OTLP_BRIDGE_CI_* are the CI scripts' own settings (.ci/tools reads them, docs/development.md documents them),
    # not the binary's.
    unknown = sorted(n for n in names - KNOWN_ENV if not n.startswith("OTLP_BRIDGE_CI_"))
    if c.expect(not unknown, f"unknown OTLP_BRIDGE_* names: {', '.join(unknown)}"):
        c.facts.append(f"{len(names)} OTLP_BRIDGE_* names used, all known to the binary")
    # docs/examples/trace.pb is trace.json converted (when opentelemetry-proto is importable).
    ex = os.path.join(root, "docs", "examples")
    try:
        sys.path.insert(0, ex)
        import json2pb  # noqa: E402
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".pb") as tmp:
            json2pb.main(os.path.join(ex, "trace.json"), tmp.name)
            with open(tmp.name, "rb") as a, open(os.path.join(ex, "trace.pb"), "rb") as b:
                if c.expect(a.read() == b.read(), "docs/examples/trace.pb is not trace.json converted: rerun json2pb.py"):
                    c.facts.append("docs/examples/trace.pb matches trace.json")
    except ImportError as e:
        c.facts.append(f"trace.pb not compared ({e})")
    return c.report()


def main():
    root = os.path.abspath(sys.argv[1])
    in_src = known_env(root)
    missing = sorted(CONTRACT_ENV - in_src)
    if in_src and missing:  # informational: the code is the other engineers' to align with the contract
        print(f"note policy: contract variables not declared in src/: {', '.join(missing)}")
    checks = {"dockerfile": check_dockerfile, "k8s": check_k8s, "compose": check_compose, "consistency": check_consistency}
    ok = True
    for name in sys.argv[2:] or checks:
        try:
            ok &= checks[name](root)
        except Exception as e:  # a malformed file: report it as a failed check, not a traceback
            print(f"FAIL policy/{name}: {type(e).__name__}: {e}")
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

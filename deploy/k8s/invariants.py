"""What the rendered overlays must promise, beyond schema validity and checkov's checks.

Usage: invariants.py RENDER_DIR DOCKERFILE EXAMPLE_SECRET...
RENDER_DIR holds single.yaml and ha.yaml (`kubectl kustomize deploy/k8s/overlays/<name>`).
Run by .ci/deploy-checks; needs PyYAML (installed there with checkov).
"""

import re
import sys
from pathlib import Path

import yaml

NAME = "ghl-holded-sync"
PORT = 8080
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        failures.append(what)


def load(path: Path) -> dict[str, dict]:
    objects = {}
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def by_kind(objects: dict[str, dict], kind: str) -> list[dict]:
    return [o for o in objects.values() if o["kind"] == kind]


def skip_annotations_have_reasons(where: str, obj: dict) -> None:
    for key, value in (obj["metadata"].get("annotations") or {}).items():
        if key.startswith("checkov.io/skip"):
            check_id, _, reason = value.partition("=")
            check(
                re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", check_id) is not None and len(reason.strip()) >= 20,
                f"{where}: {key} must be CKV_..=<reason of a few words>, got {value!r}",
            )
            check("=" not in reason, f"{where}: {key}: checkov cannot parse a reason that contains '='")


def common(overlay: str, objects: dict[str, dict]) -> tuple[dict, dict]:
    where = overlay
    deployments = by_kind(objects, "Deployment")
    check(len(deployments) == 1, f"{where}: exactly one Deployment")
    deploy = deployments[0]
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    for obj in objects.values():
        check(obj["kind"] == "Namespace" or obj["metadata"].get("namespace") == NAME,
              f"{where}: {obj['kind']}/{obj['metadata']['name']} is in namespace {NAME}")
        skip_annotations_have_reasons(f"{where} {obj['kind']}", obj)
    for kind in ["Namespace", "ServiceAccount", "ConfigMap", "Service", "PodDisruptionBudget", "NetworkPolicy"]:
        check(len(by_kind(objects, kind)) == 1, f"{where}: one {kind}")
    check(not by_kind(objects, "Secret"), f"{where}: no Secret is rendered (the examples must not overwrite real ones)")

    # probes and draining
    probes = {p: container.get(p, {}).get("httpGet", {}).get("path") for p in
              ["startupProbe", "livenessProbe", "readinessProbe"]}
    check(probes == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"},
          f"{where}: probes {probes}")
    pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(pause > 0, f"{where}: preStop sleep pause")
    check(grace >= pause + 30, f"{where}: grace {grace}s leaves at least 30 s to drain after the {pause}s pause")

    # resources and security
    for kind in ["requests", "limits"]:
        for res in ["cpu", "memory"]:
            check(res in container.get("resources", {}).get(kind, {}), f"{where}: {kind}.{res}")
    sc = container.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL capabilities")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    check("emptyDir" in volumes.get(mounts.get("/tmp"), {}), f"{where}: emptyDir on /tmp")
    check(pod.get("automountServiceAccountToken") is False, f"{where}: pod does not mount a token")
    (sa,) = by_kind(objects, "ServiceAccount")
    check(sa.get("automountServiceAccountToken") is False, f"{where}: ServiceAccount without token automount")
    check(pod.get("serviceAccountName") == sa["metadata"]["name"], f"{where}: pod uses the ServiceAccount")

    # config: the ConfigMap and Secret names resolve, and no secret sits in the ConfigMap
    (cm,) = by_kind(objects, "ConfigMap")
    env_from = container.get("envFrom", [])
    check({"configMapRef": {"name": cm["metadata"]["name"]}} in env_from, f"{where}: envFrom the ConfigMap")
    check({"secretRef": {"name": NAME}} in env_from, f"{where}: envFrom the Secret {NAME}")
    secret_keys = {"GHL_PRIVATE_TOKEN", "HOLDED_API_KEY", "GHL_CLIENT_SECRET", "ENCRYPTION_KEY", "ADMIN_TOKEN"}
    check(not secret_keys & set(cm.get("data", {})), f"{where}: no secret key in the ConfigMap")

    # the ports line up
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    check(ports == {"http": PORT}, f"{where}: container port http={PORT}")
    check(cm.get("data", {}).get("LISTEN_ADDR", f"0.0.0.0:{PORT}").endswith(f":{PORT}"), f"{where}: LISTEN_ADDR port")
    (svc,) = by_kind(objects, "Service")
    check(svc["spec"]["ports"][0]["targetPort"] in ("http", PORT), f"{where}: Service targets the http port")
    selector = deploy["spec"]["selector"]["matchLabels"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    check(selector.items() <= labels.items(), f"{where}: Deployment selector matches its pods")
    check(svc["spec"]["selector"].items() <= labels.items(), f"{where}: Service selects the pods")
    (pdb,) = by_kind(objects, "PodDisruptionBudget")
    check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), f"{where}: PDB selects the pods")
    check("minAvailable" not in pdb["spec"] and pdb["spec"].get("maxUnavailable", 0) >= 1,
          f"{where}: the PDB never blocks a drain (maxUnavailable >= 1)")

    # network policy: in on the service port, out to DNS and 443
    (netpol,) = by_kind(objects, "NetworkPolicy")
    check(netpol["spec"]["podSelector"]["matchLabels"].items() <= labels.items(), f"{where}: NetworkPolicy selects the pods")
    check(set(netpol["spec"]["policyTypes"]) == {"Ingress", "Egress"}, f"{where}: NetworkPolicy covers both directions")
    ingress_ports = {(p["port"], p.get("protocol", "TCP")) for r in netpol["spec"]["ingress"] for p in r["ports"]}
    check(ingress_ports in ({("http", "TCP")}, {(PORT, "TCP")}), f"{where}: ingress only on the service port: {ingress_ports}")
    egress_ports = {(p["port"], p.get("protocol", "TCP")) for r in netpol["spec"]["egress"] for p in r["ports"]}
    check({(53, "UDP"), (53, "TCP"), (443, "TCP")} <= egress_ports, f"{where}: egress DNS and 443: {egress_ports}")
    return deploy, cm


def single(objects: dict[str, dict]) -> None:
    deploy, cm = common("single", objects)
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    check(spec.get("replicas") == 1, "single: exactly 1 replica")
    check(spec.get("strategy") == {"type": "Recreate"}, f"single: Recreate strategy, got {spec.get('strategy')}")
    check(not by_kind(objects, "HorizontalPodAutoscaler"), "single: no HorizontalPodAutoscaler")
    url = cm["data"].get("DATABASE_URL", "")
    check(url.startswith("sqlite:///var/lib/ghl-holded-sync/"), f"single: DATABASE_URL on the volume, got {url!r}")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claim = volumes.get(mounts.get("/var/lib/ghl-holded-sync"), {}).get("persistentVolumeClaim", {}).get("claimName")
    check(f"PersistentVolumeClaim/{claim}" in objects, f"single: the data dir is the rendered PVC ({claim})")
    check(pod.get("securityContext", {}).get("fsGroup") == 65532, "single: fsGroup makes the volume writable")


def ha(objects: dict[str, dict]) -> None:
    deploy, cm = common("ha", objects)
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    (hpa,) = by_kind(objects, "HorizontalPodAutoscaler")
    check(hpa["spec"]["minReplicas"] >= 2, "ha: at least two replicas (HPA minReplicas)")
    check(deploy["spec"].get("replicas", 2) >= 2, "ha: Deployment replicas, if set, >= 2")
    check(hpa["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"], "ha: HPA targets the Deployment")
    check(deploy["spec"]["strategy"]["type"] == "RollingUpdate", "ha: rolling updates")
    check("DATABASE_URL" not in cm["data"], "ha: DATABASE_URL not in the ConfigMap")
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env.get("DATABASE_URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("key") == "DATABASE_URL" and ref.get("name"), f"ha: DATABASE_URL from a Secret, got {ref}")
    check(not by_kind(objects, "PersistentVolumeClaim"), "ha: no PersistentVolumeClaim")
    (netpol,) = by_kind(objects, "NetworkPolicy")
    egress_ports = {(p["port"], p.get("protocol", "TCP")) for r in netpol["spec"]["egress"] for p in r["ports"]}
    check((5432, "TCP") in egress_ports, "ha: egress to PostgreSQL 5432")


def inline_skips_have_reasons(path: Path) -> None:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if "checkov:skip=" in line:
            m = re.search(r"checkov:skip=(CKV2?_[A-Z0-9]+_\d+):(.*)", line)
            check(m is not None and len(m.group(2).strip()) >= 20, f"{path}:{n}: checkov:skip=CKV_..: <reason>")


def main() -> int:
    render, dockerfile, *examples = sys.argv[1:]
    single(load(Path(render) / "single.yaml"))
    ha(load(Path(render) / "ha.yaml"))
    for path in [dockerfile, *examples]:
        inline_skips_have_reasons(Path(path))
    for path in examples:
        for obj in load(Path(path)).values():
            check(obj["kind"] == "Secret", f"{path}: only Secrets")
            for key, value in obj.get("stringData", {}).items():
                check(value == "" or "REPLACE_ME" in value, f"{path}: {key} is a REPLACE_ME placeholder or blank")
    for failure in failures:
        print(f"FAILED: {failure}")
    print(f"invariants: {'ok' if not failures else f'{len(failures)} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

//! Findings as OCSF Detection Findings (class_uid 2004, OCSF 1.3): what a
//! SIEM or SOC pipeline ingests without a custom parser. The OCSF fields
//! carry what the standard has a place for (severity, confidence, status,
//! the finding's uid and time range, the process, container, endpoints, the
//! MITRE ATT&CK technique); assay's own finding, unchanged, rides in
//! `unmapped.assay` (documented in docs/findings.md and
//! docs/finding.schema.json).
//!
//! The mapping:
//! - `verdict.opened` → activity 1 Create, status 1 New;
//!   `verdict.raised`/`verdict.updated` → 2 Update, status 2 In Progress;
//!   `verdict.resolved` → 3 Close, status 4 Resolved;
//!   `verdict.suppressed` → 1 Create, status 3 Suppressed;
//!   `verdict.enforced` → 2 Update, status 2 In Progress, with
//!   `remediation.desc` saying each rung and a disposition: 2 Blocked
//!   (killed), 3 Quarantined (frozen), 4 Isolated (its pool denied:
//!   deny-egress), 14 Delayed (throttled), 17 Logged
//!   (a dry run), 16 No Action (nothing held).
//! - level → severity and confidence: confirmed → High (4) / High (3),
//!   suspected → Medium (3) / Medium (2), observed → Low (2) / Low (1).
//! - pow-mining → ATT&CK T1496 Resource Hijacking (tactic TA0040 Impact).

use serde_json::{Map, Value, json};

/// OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// The OCSF Detection Finding for one native finding (as JSON).
pub fn detection_finding(native: &Value) -> Value {
    let event = native["event"].as_str().unwrap_or_default();
    let (activity_id, activity_name, status_id, status) = match event {
        "verdict.opened" => (1, "Create", 1, "New"),
        "verdict.raised" | "verdict.updated" | "verdict.enforced" => {
            (2, "Update", 2, "In Progress")
        }
        "verdict.resolved" => (3, "Close", 4, "Resolved"),
        "verdict.suppressed" => (1, "Create", 3, "Suppressed"),
        _ => (99, "Other", 99, "Other"),
    };
    let (severity_id, severity, confidence_id, confidence) = match native["level"].as_str() {
        Some("confirmed") => (4, "High", 3, "High"),
        Some("suspected") => (3, "Medium", 2, "Medium"),
        _ => (2, "Low", 1, "Low"),
    };
    let class = native["class"].as_str().unwrap_or("general");
    let level = native["level"].as_str().unwrap_or("observed");
    let time_ms = rfc3339_ms(&native["time"]).unwrap_or(0);
    let mut finding_info = Map::new();
    finding_info.insert("uid".into(), native["id"].clone());
    finding_info.insert(
        "title".into(),
        json!(format!(
            "{class} {level} on {}",
            workload_name(&native["workload"])
        )),
    );
    finding_info.insert("desc".into(), native["explanation"].clone());
    finding_info.insert("types".into(), json!([class]));
    finding_info.insert(
        "analytic".into(),
        json!({"name": "assay correlator", "type_id": 1, "type": "Rule"}),
    );
    if let Some(from) = rfc3339_ms(&native["active"]["from"]) {
        finding_info.insert("first_seen_time".into(), json!(from));
    }
    if let Some(to) = rfc3339_ms(&native["active"]["to"]) {
        finding_info.insert("last_seen_time".into(), json!(to));
    }
    if class == "pow-mining" {
        finding_info.insert(
            "attacks".into(),
            json!([{
                "technique": {"uid": "T1496", "name": "Resource Hijacking"},
                "tactic": {"uid": "TA0040", "name": "Impact"},
                "version": "15.1"
            }]),
        );
    }
    let mut evidence = Map::new();
    if let Some(process) = process(&native["process"]) {
        evidence.insert("process".into(), process);
    }
    if let Some(container) = container(&native["workload"]) {
        evidence.insert("container".into(), container);
    }
    for (key, field) in [("dst_endpoint", "remote"), ("src_endpoint", "local")] {
        if let Some(endpoint) = endpoint(&native["network"][field]) {
            evidence.insert(key.into(), endpoint);
        }
    }
    let mut data = Map::new();
    for key in [
        "login",
        "worker",
        "pool_domain",
        "server_name",
        "query",
        "protocol",
        "variant",
    ] {
        if let Some(value) = native["network"].get(key) {
            data.insert(key.into(), value.clone());
        }
    }
    if !data.is_empty() {
        evidence.insert("data".into(), Value::Object(data));
    }
    let mut out = json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200_400 + activity_id,
        "type_name": format!("Detection Finding: {activity_name}"),
        "severity_id": severity_id,
        "severity": severity,
        "confidence_id": confidence_id,
        "confidence": confidence,
        "confidence_score": (native["score"].as_f64().unwrap_or(0.0) * 100.0).round() as u64,
        "status_id": status_id,
        "status": status,
        "time": time_ms,
        "message": native["explanation"].clone(),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": format!("{}:{}", native["id"].as_str().unwrap_or_default(), event),
            "product": {
                "name": "assay",
                "vendor_name": "assay",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "log_name": "findings",
        },
        "device": {"hostname": native["host"].clone(), "type_id": 0},
        "finding_info": Value::Object(finding_info),
        "evidences": [Value::Object(evidence)],
        "unmapped": {"assay": native.clone()},
    });
    if let (Some(enforcement), Some(out)) = (native.get("enforcement"), out.as_object_mut()) {
        let (id, name, desc) = remediation(enforcement);
        out.insert("disposition_id".into(), json!(id));
        out.insert("disposition".into(), json!(name));
        out.insert("remediation".into(), json!({ "desc": desc }));
    }
    out
}

/// The disposition of a ladder's records and a sentence per rung.
fn remediation(enforcement: &Value) -> (u32, &'static str, String) {
    let actions = enforcement["actions"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let str_of = |a: &Value, k: &str| a[k].as_str().unwrap_or_default().to_owned();
    let desc = actions
        .iter()
        .map(|a| {
            format!(
                "{} {} ({}): {} {}",
                str_of(a, "action"),
                str_of(a, "result"),
                str_of(a, "mode"),
                str_of(a, "target"),
                str_of(a, "reason")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let held = actions.iter().find_map(|a| match a["result"].as_str() {
        Some("done") => Some(a["action"].as_str().unwrap_or_default()),
        _ => None,
    });
    let dry = actions.iter().any(|a| a["result"] == "would-do");
    let (id, name) = match held {
        Some("kill") => (2, "Blocked"),
        Some("freeze") => (3, "Quarantined"),
        Some("deny-egress") => (4, "Isolated"),
        Some("throttle") => (14, "Delayed"),
        _ if dry => (17, "Logged"),
        _ => (16, "No Action"),
    };
    let rule = enforcement["rule"].as_str().unwrap_or_default();
    (id, name, format!("rule \"{rule}\": {desc}"))
}

fn rfc3339_ms(value: &Value) -> Option<u64> {
    let time = humantime::parse_rfc3339_weak(value.as_str()?).ok()?;
    Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

fn workload_name(workload: &Value) -> String {
    match workload["kind"].as_str() {
        Some("container") => format!(
            "container {}",
            workload["id"]
                .as_str()
                .map(|id| &id[..id.len().min(12)])
                .unwrap_or("?")
        ),
        Some("service") => format!("service {}", workload["unit"].as_str().unwrap_or("?")),
        Some("session") => format!("session {}", workload["sid"]),
        _ => format!("process {}", workload["tgid"]),
    }
}

fn process(process: &Value) -> Option<Value> {
    let pid = process.get("pid")?;
    let mut out = json!({
        "pid": pid,
        "name": process["comm"],
        "cmd_line": process["argv"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")),
        "file": {"path": process["exe"], "name": process["exe"].as_str().and_then(|e| e.rsplit('/').next()), "type_id": 1},
        "user": {"uid": process["uid"].to_string()},
        "parent_process": {"pid": process["ppid"]},
    });
    if let Some(started) = rfc3339_ms(&process["started"]) {
        out["created_time"] = json!(started);
    }
    Some(out)
}

fn container(workload: &Value) -> Option<Value> {
    (workload["kind"] == "container").then(|| {
        let mut c = json!({
            "uid": workload["id"],
            "runtime": workload["runtime"],
        });
        if let Some(pod) = workload.get("pod_uid") {
            c["orchestrator"] = json!("Kubernetes");
            c["pod_uuid"] = pod.clone();
        }
        c
    })
}

fn endpoint(addr: &Value) -> Option<Value> {
    let addr: std::net::SocketAddr = addr.as_str()?.parse().ok()?;
    Some(json!({"ip": addr.ip().to_string(), "port": addr.port()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmed_miner_maps_to_a_high_severity_t1496_finding() {
        let native = json!({
            "id": "h-1", "event": "verdict.opened", "time": "2026-11-25T07:00:00.000Z",
            "host": "gpu-node-7", "class": "pow-mining", "level": "confirmed", "score": 1.0,
            "workload": {"kind": "container", "runtime": "containerd", "id": "4f1c6e2b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4c3b2a19081"},
            "process": {"pid": 7, "ppid": 1, "uid": 0, "comm": "xmrig", "exe": "/opt/xmrig", "argv": ["xmrig", "-o", "x"], "source": "exec"},
            "network": {"protocol": "stratum-v1", "remote": "192.0.2.1:3333", "local": "10.0.0.2:40000", "login": "44AFF"},
            "active": {"from": "2026-11-25T06:59:00.000Z", "to": "2026-11-25T07:00:00.000Z"},
            "explanation": "…", "evidence": []
        });
        let ocsf = detection_finding(&native);
        assert_eq!(ocsf["class_uid"], 2004);
        assert_eq!(ocsf["type_uid"], 200_401);
        assert_eq!(ocsf["severity_id"], 4);
        assert_eq!(
            ocsf["finding_info"]["attacks"][0]["technique"]["uid"],
            "T1496"
        );
        assert_eq!(ocsf["evidences"][0]["dst_endpoint"]["port"], 3333);
        assert_eq!(ocsf["evidences"][0]["container"]["runtime"], "containerd");
        assert_eq!(ocsf["evidences"][0]["data"]["login"], "44AFF");
        assert_eq!(
            ocsf["finding_info"]["first_seen_time"],
            1_795_589_940_000u64
        );
        assert_eq!(ocsf["unmapped"]["assay"], native);
        // A resolved training verdict: Close, no ATT&CK technique.
        let mut resolved = native.clone();
        resolved["event"] = json!("verdict.resolved");
        resolved["class"] = json!("ai-training");
        let ocsf = detection_finding(&resolved);
        assert_eq!(
            (ocsf["activity_id"].clone(), ocsf["status_id"].clone()),
            (json!(3), json!(4))
        );
        assert!(ocsf["finding_info"].get("attacks").is_none());
    }

    #[test]
    fn an_enforcement_record_says_what_held_as_a_disposition() {
        let mut native = json!({
            "id": "h-2", "event": "verdict.enforced", "time": "2026-11-25T07:00:00.000Z",
            "host": "h", "class": "pow-mining", "level": "confirmed", "score": 1.0,
            "workload": {"kind": "session", "sid": 7}, "explanation": "e", "evidence": [],
            "enforcement": {"rule": "r", "actions": [
                {"action": "freeze", "mode": "enforce", "target": "", "result": "skipped",
                 "reason": "GPU", "at": "2026-11-25T07:00:00.000Z"},
                {"action": "kill", "mode": "enforce", "target": "cgroup /m", "result": "done",
                 "reason": "empty", "at": "2026-11-25T07:00:00.000Z"}]}
        });
        let f = detection_finding(&native);
        assert_eq!(
            (f["activity_id"].clone(), f["disposition_id"].clone()),
            (json!(2), json!(2))
        );
        assert_eq!(f["disposition"], "Blocked");
        let desc = f["remediation"]["desc"].as_str().unwrap();
        assert!(desc.starts_with("rule \"r\": freeze skipped"), "{desc}");
        assert!(desc.contains("kill done (enforce): cgroup /m"), "{desc}");
        native["enforcement"]["actions"][1]["action"] = json!("deny-egress");
        assert_eq!(
            (
                detection_finding(&native)["disposition_id"].clone(),
                detection_finding(&native)["disposition"].clone()
            ),
            (json!(4), json!("Isolated"))
        );
        native["enforcement"]["actions"][1]["result"] = json!("would-do");
        assert_eq!(detection_finding(&native)["disposition"], "Logged");
        native["enforcement"]["actions"][1]["result"] = json!("disarmed");
        assert_eq!(detection_finding(&native)["disposition"], "No Action");
        // Other events carry none.
        native["event"] = json!("verdict.opened");
        native.as_object_mut().unwrap().remove("enforcement");
        assert!(detection_finding(&native).get("disposition").is_none());
    }
}

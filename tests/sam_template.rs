//! `template.yaml` (the SAM deployment) holds to WORKMAIL.md's contract: the `rewrite`
//! binary on arm64, a timeout under WorkMail's 15 seconds, a role that can do exactly
//! what the function needs and no more, a private expiring bucket that only WorkMail may
//! read, and a Lambda permission for the one organization.
//!
//! The template is read as YAML (CloudFormation's short tags such as `!Sub` come through
//! as tagged values) and each point is checked on the structure, so a reordered or
//! reformatted template still passes and a widened one fails: see
//! `the_role_check_refuses_a_widened_role`, which feeds the same check doctored copies.
//! `cfn-lint template.yaml` (run by `.ci/run`) checks the template against CloudFormation's
//! schemas; these tests check what it means.

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn template() -> Value {
    let path = root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

// ---- reading CloudFormation values ----

/// The argument of an intrinsic function, in either spelling: the short tag (`!Sub x`)
/// or the long form (`{"Fn::Sub": x}`; `Ref` has no `Fn::`).
fn intrinsic<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == name => Some(&t.value),
        Value::Mapping(m) if m.len() == 1 => {
            let long = if name == "Ref" {
                name.to_string()
            } else {
                format!("Fn::{name}")
            };
            m.get(long.as_str())
        }
        _ => None,
    }
}

/// A value as one comparable string: `Sub:<text>`, `Ref:<name>`, `GetAtt:<res>.<attr>`,
/// or the literal. Anything else (an `If`, a `Join`) is spelled out by its debug form, so
/// it never equals an expected value by accident.
fn norm(v: &Value) -> String {
    if let Some(s) = intrinsic(v, "Sub").and_then(Value::as_str) {
        return format!("Sub:{s}");
    }
    if let Some(s) = intrinsic(v, "Ref").and_then(Value::as_str) {
        return format!("Ref:{s}");
    }
    if let Some(a) = intrinsic(v, "GetAtt") {
        let joined = match a {
            Value::String(s) => s.clone(),
            Value::Sequence(parts) => parts
                .iter()
                .map(|p| p.as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join("."),
            other => format!("{other:?}"),
        };
        return format!("GetAtt:{joined}");
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// A field that IAM lets be one value or a list of them.
fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn str_set(v: &Value) -> BTreeSet<String> {
    one_or_many(v).into_iter().map(norm).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The one resource of `ty`: (logical ID, body).
fn the_resource<'a>(t: &'a Value, ty: &str) -> (String, &'a Value) {
    let found: Vec<(String, &Value)> = resources(t)
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {ty}, found {found:?}");
    found.into_iter().next().unwrap()
}

fn resources(t: &Value) -> impl Iterator<Item = (String, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("template has Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v))
}

fn function(t: &Value) -> (String, &Value) {
    the_resource(t, "AWS::Serverless::Function")
}

fn bucket(t: &Value) -> (String, &Value) {
    the_resource(t, "AWS::S3::Bucket")
}

/// The logical ID of the parameter a `!Ref` names, checking it is one.
fn parameter_ref(t: &Value, v: &Value) -> String {
    let name = intrinsic(v, "Ref")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected a !Ref to a parameter, got {v:?}"));
    assert!(
        t["Parameters"].get(name).is_some(),
        "{name} is not a parameter"
    );
    name.to_string()
}

/// `AllowedPattern` of a parameter as a compiled regex.
fn allowed_pattern(t: &Value, param: &str) -> regex::Regex {
    let p = t["Parameters"][param]["AllowedPattern"]
        .as_str()
        .unwrap_or_else(|| panic!("parameter {param} has no AllowedPattern"));
    regex::Regex::new(p).unwrap()
}

fn organization_param(t: &Value) -> String {
    let (_, perm) = the_resource(t, "AWS::Lambda::Permission");
    // The organization parameter is the one the permission's source ARN names.
    let arn = norm(&perm["Properties"]["SourceArn"]);
    let start = arn
        .find("organization/${")
        .expect("source ARN names an organization")
        + 15;
    let end = arn[start..].find('}').unwrap() + start;
    arn[start..end].to_string()
}

/// The ARN of one organization's messages in the Message Flow API (both directions).
fn org_messages_arn(org: &str) -> String {
    format!(
        "Sub:arn:${{AWS::Partition}}:workmailmessageflow:${{AWS::Region}}:${{AWS::AccountId}}:message/${{{org}}}/*"
    )
}

// ---- the function ----

#[test]
fn the_function_is_the_rewrite_binary_built_by_cargo_lambda_for_arm64_al2023() {
    let t = template();
    let (_, f) = function(&t);
    assert_eq!(
        f["Metadata"]["BuildMethod"].as_str(),
        Some("rust-cargolambda")
    );
    let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str();
    assert_eq!(binary, Some("rewrite"));
    let p = &f["Properties"];
    assert_eq!(p["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(norm(&p["Handler"]), "bootstrap");
    assert_eq!(str_set(&p["Architectures"]), set(&["arm64"]));
    assert_eq!(p["CodeUri"].as_str(), Some("."));

    // The binary the template names is one Cargo.toml builds.
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let bins: Vec<&str> = manifest["bin"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(bins.contains(&"rewrite"), "Cargo.toml bins: {bins:?}");
}

#[test]
fn the_function_times_out_before_workmails_15_seconds_with_room_to_answer() {
    let t = template();
    let (_, f) = function(&t);
    let own = f["Properties"]["Timeout"].as_u64();
    let global = t["Globals"]["Function"]["Timeout"].as_u64();
    let timeout = own.or(global).expect("the function sets a Timeout");
    assert!(
        timeout < workmail_flow::handler::WORKMAIL_TIMEOUT.as_secs(),
        "Timeout {timeout}"
    );
    // The handler answers ANSWER_MARGIN before the Lambda deadline: the timeout must
    // leave it time to do anything at all.
    assert!(
        std::time::Duration::from_secs(timeout) > 4 * workmail_flow::handler::ANSWER_MARGIN,
        "Timeout {timeout}"
    );
}

#[test]
fn reserved_concurrency_is_a_parameter_whose_empty_default_reserves_nothing() {
    let t = template();
    let p = &t["Parameters"]["ReservedConcurrency"];
    assert_eq!(p["Default"].as_str(), Some(""), "{p:?}");
    let pattern = allowed_pattern(&t, "ReservedConcurrency");
    for ok in ["", "0", "5", "100"] {
        assert!(pattern.is_match(ok), "{ok:?}");
    }
    for bad in ["-1", "five", "5.5", " 5"] {
        assert!(!pattern.is_match(bad), "{bad:?}");
    }
    let (_, f) = function(&t);
    let v = &f["Properties"]["ReservedConcurrentExecutions"];
    let args = intrinsic(v, "If").expect("ReservedConcurrentExecutions is an !If");
    let cond = args[0].as_str().unwrap();
    assert_eq!(norm(&args[1]), "Ref:ReservedConcurrency");
    assert_eq!(norm(&args[2]), "Ref:AWS::NoValue");
    // The condition holds exactly when the parameter is not empty.
    assert_eq!(
        norm(&t["Conditions"][cond]),
        norm(
            &serde_yaml::from_str::<Value>("!Not [!Equals [!Ref ReservedConcurrency, \"\"]]")
                .unwrap()
        )
    );
}

#[test]
fn the_function_environment_is_what_the_code_reads() {
    let t = template();
    let (_, f) = function(&t);
    let (bucket_id, _) = bucket(&t);
    let vars = &f["Properties"]["Environment"]["Variables"];
    assert_eq!(
        norm(&vars["WORKMAIL_FLOW_BUCKET"]),
        format!("Ref:{bucket_id}")
    );
    parameter_ref(&t, &vars["WORKMAIL_FLOW_PREFIX"]);

    // lambda::Function::from_env reads a set WORKMAIL_FLOW_CONFIG as a path even when it
    // is empty, so an empty parameter must leave the variable out, not set it to "".
    let config = intrinsic(&vars["WORKMAIL_FLOW_CONFIG"], "If")
        .and_then(Value::as_sequence)
        .expect("WORKMAIL_FLOW_CONFIG is set through !If");
    assert_eq!(config.len(), 3);
    let param = parameter_ref(&t, &config[1]);
    assert_eq!(norm(&config[2]), "Ref:AWS::NoValue");
    let condition = &t["Conditions"][config[0].as_str().unwrap()];
    let equals = intrinsic(condition, "Not")
        .and_then(|n| n.as_sequence())
        .and_then(|n| intrinsic(&n[0], "Equals"))
        .and_then(Value::as_sequence)
        .expect("the condition is !Not [!Equals [param, \"\"]]");
    assert_eq!(norm(&equals[0]), format!("Ref:{param}"));
    assert_eq!(equals[1].as_str(), Some(""));
    assert_eq!(t["Parameters"][&param]["Default"].as_str(), Some(""));

    // Lambda passes LoggingConfig.LogFormat to the function as AWS_LAMBDA_LOG_FORMAT.
    let format = parameter_ref(&t, &f["Properties"]["LoggingConfig"]["LogFormat"]);
    assert_eq!(
        str_set(&t["Parameters"][&format]["AllowedValues"]),
        set(&["JSON", "Text"])
    );
}

#[test]
fn the_object_prefix_parameter_allows_only_keys_workmail_accepts() {
    let t = template();
    let (_, f) = function(&t);
    let param = parameter_ref(
        &t,
        &f["Properties"]["Environment"]["Variables"]["WORKMAIL_FLOW_PREFIX"],
    );
    let pattern = allowed_pattern(&t, &param);
    let default = t["Parameters"][&param]["Default"].as_str().unwrap();
    assert_eq!(default, workmail_flow::aws::Upload::DEFAULT_PREFIX);
    for ok in [default, "", "mail/rewrites/", "A-1/"] {
        assert!(pattern.is_match(ok), "{ok:?} refused");
    }
    // WorkMail's key pattern is [a-zA-Z0-9-/]: no dots, no underscores.
    for bad in [
        "workmail.flow/",
        "workmail_flow/",
        "no-slash",
        "/leading",
        "a//",
    ] {
        assert!(!pattern.is_match(bad), "{bad:?} accepted");
    }
}

#[test]
fn the_organization_parameter_accepts_only_workmail_organization_ids() {
    let t = template();
    let org = organization_param(&t);
    let pattern = allowed_pattern(&t, &org);
    assert!(pattern.is_match("m-0123456789abcdef0123456789abcdef"));
    for bad in [
        "",
        "*",
        "m-0123456789abcdef",
        "m-0123456789abcdef0123456789abcdef/*",
        "0123456789abcdef0123456789abcdef",
    ] {
        assert!(!pattern.is_match(bad), "{bad:?} accepted");
    }
}

// ---- the role ----

/// Every action the role's inline policies allow, with the resources it is allowed on.
/// Errors on anything that would make the list incomplete: a statement that is not a
/// plain Allow of Action on Resource, a managed policy other than basic Lambda logging,
/// a SAM `Policies` on the function, or a separate IAM policy resource.
/// `directory`: the value of the template's `HasDirectoryAccess` condition, which
/// decides the role's `!If` policies.
fn role_grants(t: &Value, directory: bool) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let (fid, f) = function(t);
    if !f["Properties"]["Policies"].is_null() {
        return Err(format!(
            "{fid} has SAM Policies; keep every grant in the role"
        ));
    }
    for (id, r) in resources(t) {
        let ty = r["Type"].as_str().unwrap_or("");
        if matches!(
            ty,
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::RolePolicy"
        ) {
            return Err(format!("{id}: {ty} adds grants outside the role"));
        }
    }
    let (role_id, role) = the_resource(t, "AWS::IAM::Role");
    if norm(&f["Properties"]["Role"]) != format!("GetAtt:{role_id}.Arn") {
        return Err(format!("{fid} does not use {role_id}"));
    }
    let rp = &role["Properties"];
    for arn in one_or_many(&rp["ManagedPolicyArns"]) {
        let arn = norm(arn);
        if arn.contains("FullAccess")
            || !arn.ends_with(":policy/service-role/AWSLambdaBasicExecutionRole")
        {
            return Err(format!("managed policy {arn}"));
        }
    }
    if !rp["PermissionsBoundary"].is_null() {
        // Harmless, but then this check would no longer describe the role fully.
        return Err("a permissions boundary: update this test".into());
    }
    let trust = &rp["AssumeRolePolicyDocument"]["Statement"];
    let principals: BTreeSet<String> = one_or_many(trust)
        .iter()
        .flat_map(|s| str_set(&s["Principal"]["Service"]))
        .collect();
    if principals != set(&["lambda.amazonaws.com"]) {
        return Err(format!("role trusts {principals:?}"));
    }

    let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for policy in one_or_many(&rp["Policies"]) {
        // `!If [HasDirectoryAccess, policy, !Ref AWS::NoValue]`: the policy or none.
        let policy = match intrinsic(policy, "If").and_then(Value::as_sequence) {
            Some(branches) => {
                if branches.len() != 3 || branches[0].as_str() != Some("HasDirectoryAccess") {
                    return Err(format!(
                        "a conditional policy other than the directory's: {branches:?}"
                    ));
                }
                let chosen = if directory {
                    &branches[1]
                } else {
                    &branches[2]
                };
                if norm(chosen) == "Ref:AWS::NoValue" {
                    continue;
                }
                chosen
            }
            None => policy,
        };
        for s in one_or_many(&policy["PolicyDocument"]["Statement"]) {
            let keys: BTreeSet<String> = s
                .as_mapping()
                .ok_or("a statement that is not a mapping")?
                .keys()
                .map(norm)
                .collect();
            if !keys.is_subset(&set(&["Sid", "Effect", "Action", "Resource"])) {
                return Err(format!("statement with {keys:?}"));
            }
            if s["Effect"].as_str() != Some("Allow") {
                return Err(format!("statement with Effect {:?}", s["Effect"]));
            }
            let res = str_set(&s["Resource"]);
            for action in str_set(&s["Action"]) {
                grants
                    .entry(action)
                    .or_default()
                    .extend(res.iter().cloned());
            }
        }
    }
    Ok(grants)
}

/// What the function needs, exactly (WORKMAIL.md, Permissions); with `directory`, the
/// three directory reads on the organization too.
fn expected_grants(t: &Value, directory: bool) -> BTreeMap<String, BTreeSet<String>> {
    let org = organization_param(t);
    let (bucket_id, _) = bucket(t);
    let (log_id, _) = the_resource(t, "AWS::Logs::LogGroup");
    let (_, f) = function(t);
    let prefix = parameter_ref(
        t,
        &f["Properties"]["Environment"]["Variables"]["WORKMAIL_FLOW_PREFIX"],
    );
    let messages = set(&[&org_messages_arn(&org)]);
    let objects = set(&[&format!("Sub:${{{bucket_id}.Arn}}/${{{prefix}}}*")]);
    let logs = set(&[&format!("GetAtt:{log_id}.Arn")]);
    let organization = set(&[&format!(
        "Sub:arn:${{AWS::Partition}}:workmail:${{AWS::Region}}:${{AWS::AccountId}}:organization/${{{org}}}"
    )]);
    let directory_reads = [
        "workmail:DescribeEntity",
        "workmail:DescribeUser",
        "workmail:ListGroupsForEntity",
    ]
    .into_iter()
    .filter(|_| directory)
    .map(|a| (a.to_string(), organization.clone()));
    BTreeMap::from([
        (
            "workmailmessageflow:GetRawMessageContent".into(),
            messages.clone(),
        ),
        ("workmailmessageflow:PutRawMessageContent".into(), messages),
        ("s3:PutObject".into(), objects.clone()),
        ("s3:AbortMultipartUpload".into(), objects),
        ("logs:CreateLogStream".into(), logs.clone()),
        ("logs:PutLogEvents".into(), logs),
    ])
    .into_iter()
    .chain(directory_reads)
    .collect()
}

#[test]
fn the_role_allows_exactly_the_workmail_s3_and_log_actions_on_their_own_resources() {
    let t = template();
    assert_eq!(role_grants(&t, false).unwrap(), expected_grants(&t, false));
    // The function logs to that group.
    let (log_id, _) = the_resource(&t, "AWS::Logs::LogGroup");
    let (_, f) = function(&t);
    assert_eq!(
        norm(&f["Properties"]["LoggingConfig"]["LogGroup"]),
        format!("Ref:{log_id}")
    );
}

/// Edits `template.yaml`'s text the way someone widening the role might.
fn doctored(from: &str, to: &str) -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    assert!(
        text.contains(from),
        "template.yaml no longer contains {from:?}"
    );
    serde_yaml::from_str(&text.replacen(from, to, 1)).unwrap()
}

#[test]
fn the_role_check_refuses_a_widened_role() {
    let widened = [
        ("- s3:PutObject\n", "- s3:*\n"),
        (
            "- s3:AbortMultipartUpload\n",
            "- s3:AbortMultipartUpload\n                  - s3:GetObject\n",
        ),
        (
            "message/${OrganizationId}/*\n              # Upload",
            "message/*\n              # Upload",
        ),
        ("/${ObjectPrefix}*\n", "/*\n"),
        (
            "      Policies:\n        - PolicyName",
            "      ManagedPolicyArns: [arn:aws:iam::aws:policy/AmazonS3FullAccess]\n      Policies:\n        - PolicyName",
        ),
    ];
    for (from, to) in widened {
        let t = doctored(from, to);
        let same = role_grants(&t, false).is_ok_and(|g| g == expected_grants(&t, false));
        assert!(!same, "widening {from:?} -> {to:?} went unnoticed");
    }
    let widened_directory = [
        ("- workmail:DescribeUser\n", "- workmail:*\n"),
        (
            "- workmail:ListGroupsForEntity\n",
            "- workmail:ListGroupsForEntity\n                    - workmail:ListUsers\n",
        ),
        (
            ":organization/${OrganizationId}\n          - !Ref",
            ":organization/*\n          - !Ref",
        ),
        (
            "          - HasDirectoryAccess\n",
            "          - HasReservedConcurrency\n",
        ),
    ];
    for (from, to) in widened_directory {
        let t = doctored(from, to);
        let same = role_grants(&t, true).is_ok_and(|g| g == expected_grants(&t, true));
        assert!(!same, "widening {from:?} -> {to:?} went unnoticed");
    }
}

#[test]
fn directory_access_is_off_by_default_and_then_grants_only_the_three_reads_on_the_organization() {
    let t = template();
    let p = &t["Parameters"]["DirectoryAccess"];
    assert_eq!(p["Default"].as_str(), Some("false"));
    assert_eq!(str_set(&p["AllowedValues"]), set(&["false", "true"]));
    let cond = format!("{:?}", t["Conditions"]["HasDirectoryAccess"]);
    assert!(
        cond.contains("Equals") && cond.contains("DirectoryAccess") && cond.contains("\"true\""),
        "{cond}"
    );
    let off = role_grants(&t, false).unwrap();
    assert!(!off.keys().any(|a| a.starts_with("workmail:")), "{off:?}");
    assert_eq!(role_grants(&t, true).unwrap(), expected_grants(&t, true));
}

// ---- the bucket ----

#[test]
fn the_bucket_is_private_sse_s3_encrypted_and_expires_objects_after_a_day() {
    let t = template();
    let (_, b) = bucket(&t);
    let p = &b["Properties"];
    let sse = one_or_many(&p["BucketEncryption"]["ServerSideEncryptionConfiguration"]);
    assert_eq!(sse.len(), 1);
    assert_eq!(
        sse[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"].as_str(),
        Some("AES256")
    );
    let block = &p["PublicAccessBlockConfiguration"];
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[key].as_bool(), Some(true), "{key}");
    }
    let ownership = one_or_many(&p["OwnershipControls"]["Rules"]);
    assert_eq!(ownership.len(), 1);
    assert_eq!(
        ownership[0]["ObjectOwnership"].as_str(),
        Some("BucketOwnerEnforced")
    );
    // With versioning, expired objects would linger as noncurrent versions.
    assert!(p["VersioningConfiguration"].is_null());

    // One enabled rule expires every object (no Prefix or Filter narrows it) after a day.
    let expiring: Vec<&Value> = one_or_many(&p["LifecycleConfiguration"]["Rules"])
        .into_iter()
        .filter(|r| r["Status"].as_str() == Some("Enabled"))
        .filter(|r| r["ExpirationInDays"].as_u64() == Some(1))
        .filter(|r| r["Prefix"].is_null() && r["Filter"].is_null())
        .collect();
    assert_eq!(expiring.len(), 1, "{:?}", p["LifecycleConfiguration"]);
}

#[test]
fn the_bucket_policy_lets_only_workmail_read_for_this_organization_over_tls() {
    let t = template();
    let (bucket_id, _) = bucket(&t);
    let org = organization_param(&t);
    let (_, policy) = the_resource(&t, "AWS::S3::BucketPolicy");
    let p = &policy["Properties"];
    assert_eq!(norm(&p["Bucket"]), format!("Ref:{bucket_id}"));
    let statements = one_or_many(&p["PolicyDocument"]["Statement"]);

    let allows: Vec<&&Value> = statements
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .collect();
    assert_eq!(allows.len(), 1, "one Allow statement: WorkMail's");
    let s = allows[0];
    assert!(s["NotAction"].is_null() && s["NotResource"].is_null() && s["NotPrincipal"].is_null());
    assert_eq!(
        str_set(&s["Principal"]["Service"]),
        set(&["Sub:workmail.${AWS::Region}.amazonaws.com"])
    );
    assert_eq!(
        str_set(&s["Action"]),
        set(&["s3:GetObject", "s3:GetObjectVersion"])
    );
    for r in str_set(&s["Resource"]) {
        assert!(r.starts_with(&format!("Sub:${{{bucket_id}.Arn}}/")), "{r}");
    }
    let c = &s["Condition"];
    assert_eq!(
        c.as_mapping().unwrap().len(),
        3,
        "StringEquals, Bool, ArnLike: {c:?}"
    );
    assert_eq!(
        norm(&c["StringEquals"]["aws:SourceAccount"]),
        "Ref:AWS::AccountId"
    );
    assert_eq!(norm(&c["Bool"]["aws:SecureTransport"]), "true");
    assert_eq!(norm(&c["ArnLike"]["aws:SourceArn"]), org_messages_arn(&org));

    // And nobody reaches the bucket without TLS.
    let deny_plain = statements.iter().any(|s| {
        s["Effect"].as_str() == Some("Deny")
            && norm(&s["Principal"]) == "*"
            && str_set(&s["Action"]) == set(&["s3:*"])
            && norm(&s["Condition"]["Bool"]["aws:SecureTransport"]) == "false"
    });
    assert!(deny_plain, "a Deny of s3:* without TLS");
}

// ---- the invoke permission and outputs ----

#[test]
fn workmail_may_invoke_the_function_only_for_the_organization() {
    let t = template();
    let (fid, _) = function(&t);
    let org = organization_param(&t);
    let (_, perm) = the_resource(&t, "AWS::Lambda::Permission");
    let p = &perm["Properties"];
    assert_eq!(norm(&p["FunctionName"]), format!("GetAtt:{fid}.Arn"));
    assert_eq!(p["Action"].as_str(), Some("lambda:InvokeFunction"));
    assert_eq!(
        norm(&p["Principal"]),
        "Sub:workmail.${AWS::Region}.amazonaws.com"
    );
    assert_eq!(
        norm(&p["SourceArn"]),
        format!(
            "Sub:arn:${{AWS::Partition}}:workmail:${{AWS::Region}}:${{AWS::AccountId}}:organization/${{{org}}}"
        )
    );
    assert_eq!(norm(&p["SourceAccount"]), "Ref:AWS::AccountId");
}

#[test]
fn the_outputs_give_the_function_arn_bucket_and_role() {
    let t = template();
    let (fid, _) = function(&t);
    let (bucket_id, _) = bucket(&t);
    let (role_id, _) = the_resource(&t, "AWS::IAM::Role");
    let values: BTreeSet<String> = t["Outputs"]
        .as_mapping()
        .unwrap()
        .values()
        .map(|o| norm(&o["Value"]))
        .collect();
    for want in [
        format!("GetAtt:{fid}.Arn"),
        format!("Ref:{bucket_id}"),
        format!("GetAtt:{role_id}.Arn"),
    ] {
        assert!(values.contains(&want), "no output {want}: {values:?}");
    }
}

//! `--resource-attribute*` and their variables: the flag as written, the variable in the `OTEL_RESOURCE_ATTRIBUTES`
//! format (percent-decoded), flag over variable, last of a repeated key, and refusals that name the entry.

use super::tests::config;
use super::{AttributeMode, ConfigError, ResourceAttribute};

fn attrs(args: &[&str], env: &[(&str, &str)]) -> Vec<(String, String, AttributeMode)> {
    let c = config(args, env).unwrap_or_else(|e| panic!("{e}"));
    c.resource_attributes.into_iter().map(|ResourceAttribute { key, value, mode }| (key, value, mode)).collect()
}

fn a(k: &str, v: &str, mode: AttributeMode) -> (String, String, AttributeMode) {
    (k.into(), v.into(), mode)
}

use AttributeMode::{Insert, Upsert};

#[test]
fn none_by_default() {
    assert!(attrs(&[], &[]).is_empty());
    assert!(attrs(&[], &[("OTLP_BRIDGE_RESOURCE_ATTRIBUTES", "")]).is_empty());
}

#[test]
fn flags_take_the_value_as_written() {
    let got =
        attrs(&["--resource-attribute", "deployment.environment=prod", "--resource-attribute", "note=a=b,c%20d"], &[]);
    assert_eq!(got, vec![a("deployment.environment", "prod", Upsert), a("note", "a=b,c%20d", Upsert)]);
    let got =
        attrs(&["--resource-attribute-if-missing", " k8s.pod.name =p-1", "--resource-attribute-if-missing=e="], &[]);
    assert_eq!(got, vec![a("k8s.pod.name", "p-1", Insert), a("e", "", Insert)]);
}

#[test]
fn variables_are_percent_decoded_like_otel_resource_attributes() {
    let env = [
        ("OTLP_BRIDGE_RESOURCE_ATTRIBUTES", " deployment.environment = prod%20eu%2C1 ,service.namespace=shop,"),
        ("OTLP_BRIDGE_RESOURCE_ATTRIBUTES_IF_MISSING", "k8s.pod.name=p-1,,k8s.node.name=n%C3%A9"),
    ];
    let got = attrs(&[], &env);
    assert_eq!(
        got,
        vec![
            a("deployment.environment", "prod eu,1", Upsert),
            a("service.namespace", "shop", Upsert),
            a("k8s.pod.name", "p-1", Insert),
            a("k8s.node.name", "né", Insert),
        ]
    );
}

#[test]
fn a_flag_replaces_its_variable_and_a_repeated_key_keeps_the_last() {
    let env = [("OTLP_BRIDGE_RESOURCE_ATTRIBUTES", "from=env"), ("OTLP_BRIDGE_RESOURCE_ATTRIBUTES_IF_MISSING", "i=1")];
    let got = attrs(&["--resource-attribute", "k=1", "--resource-attribute", "k=2"], &env);
    assert_eq!(got, vec![a("k", "2", Upsert), a("i", "1", Insert)]);
    assert_eq!(
        attrs(&[], &[("OTLP_BRIDGE_RESOURCE_ATTRIBUTES", "k=1,j=0,k=2")]),
        vec![a("j", "0", Upsert), a("k", "2", Upsert)]
    );
}

#[test]
fn malformed_entries_refuse_start_up_naming_them() {
    let refused = |args: &[&str], env: &[(&str, &str)], entry: &str, origin: &str| {
        let err = config(args, env).err().unwrap_or_else(|| panic!("{args:?} {env:?} accepted"));
        assert!(matches!(err, ConfigError::ResourceAttribute { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(entry) && text.contains(origin), "{text}");
    };
    refused(&["--resource-attribute", "novalue"], &[], "novalue", "--resource-attribute");
    refused(&["--resource-attribute-if-missing", "=v"], &[], "=v", "--resource-attribute-if-missing");
    let var = "OTLP_BRIDGE_RESOURCE_ATTRIBUTES";
    refused(&[], &[(var, "a=1,broken")], "broken", var);
    refused(&[], &[(var, "a=50%")], "a=50%", var);
    refused(&[], &[(var, "a=%zz")], "a=%zz", var);
    refused(&[], &[(var, "a=%ff")], "a=%ff", var);
    refused(&[], &[(var, "a b=1")], "a b=1", var);
    refused(&[], &[("OTLP_BRIDGE_RESOURCE_ATTRIBUTES_IF_MISSING", " =1")], " =1", "IF_MISSING");
}

#[test]
fn one_key_cannot_be_both_upserted_and_inserted() {
    let err = config(&["--resource-attribute", "k=1", "--resource-attribute-if-missing", "k=2"], &[]).unwrap_err();
    assert!(err.to_string().contains("\"k\""), "{err}");
}

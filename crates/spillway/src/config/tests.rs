//! Unit tests of option parsing, merging and resolution.

use super::*;

#[test]
fn sizes() {
    assert_eq!(parse_size("256MiB").ok(), Some(256 << 20));
    assert_eq!(parse_size("256M").ok(), Some(256 << 20));
    assert_eq!(parse_size("1.5GiB").ok(), Some(3 << 29));
    assert_eq!(parse_size("100MB").ok(), Some(100_000_000));
    assert_eq!(parse_size("4096").ok(), Some(4096));
    assert!(parse_size("lots").is_err());
    assert!(parse_size("12 parsecs").is_err());
    assert!(parse_size("0").is_err());
}

#[test]
fn flags_override_the_file() {
    let file = BuildOptions::from_toml(
        "input = \"a\"\noutput = \"o\"\nno-target = true\nthreads = 3\nmax-rows = 10\n",
    )
    .expect("valid toml");
    let flags = BuildOptions {
        threads: Some(1),
        ..Default::default()
    };
    let cfg = file.merge(flags).resolve().expect("valid");
    assert_eq!((cfg.threads, cfg.max_rows), (Some(1), Some(10)));
    assert!(
        BuildOptions::from_toml("thread = 3").is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn bad_values_are_refused() {
    let base = || BuildOptions {
        input: Some("i".into()),
        output: Some("o".into()),
        no_target: Some(true),
        ..Default::default()
    };
    assert!(BuildOptions {
        threads: Some(0),
        ..base()
    }
    .resolve()
    .is_err());
    assert!(BuildOptions {
        features: Some(vec![]),
        ..base()
    }
    .resolve()
    .is_err());
    assert!(BuildOptions {
        features: Some(vec!["a".into(), "a".into()]),
        ..base()
    }
    .resolve()
    .is_err());
    assert!(BuildOptions {
        input: None,
        ..base()
    }
    .resolve()
    .is_err());
}

#[test]
fn a_build_names_its_target_or_says_it_has_none() {
    let base = || BuildOptions {
        input: Some("i".into()),
        output: Some("o".into()),
        ..Default::default()
    };
    let e = base().resolve().expect_err("no target, no --no-target");
    assert!(e.to_string().contains("--no-target"), "{e}");
    let both = BuildOptions {
        target: Some("y".into()),
        no_target: Some(true),
        ..base()
    };
    assert!(both.resolve().is_err());
    // A flag overrides the file either way.
    let file = BuildOptions {
        target: Some("y".into()),
        ..base()
    };
    let flags = BuildOptions {
        no_target: Some(true),
        ..Default::default()
    };
    let cfg = file
        .clone()
        .merge(flags)
        .resolve()
        .expect("--no-target wins");
    assert_eq!(cfg.target, None);
    let file = BuildOptions {
        no_target: Some(true),
        ..base()
    };
    let flags = BuildOptions {
        target: Some("y".into()),
        ..Default::default()
    };
    let cfg = file.merge(flags).resolve().expect("--target wins");
    assert_eq!(cfg.target.as_deref(), Some("y"));
}

#[test]
fn storage_options_merge_key_by_key_and_urls_are_checked() {
    let file = BuildOptions::from_toml(
        "input = \"s3://bucket/u/\"\noutput = \"o\"\nno-target = true\n\
         [storage]\naws_region = \"eu-west-1\"\naws_allow_http = true\nmax_retries = 2\n",
    )
    .expect("valid toml");
    let mut over = StorageOptions::new();
    over.insert("AWS_REGION", "us-east-1");
    let flags = BuildOptions {
        storage: Some(over),
        ..Default::default()
    };
    let cfg = file.merge(flags).resolve().expect("valid");
    assert_eq!(cfg.storage.get("aws_region"), Some("us-east-1"));
    assert_eq!(cfg.storage.get("aws_allow_http"), Some("true"));
    assert_eq!(cfg.storage.get("max_retries"), Some("2"));
    let with_input = |input: &str| BuildOptions {
        input: Some(input.into()),
        output: Some("o".into()),
        no_target: Some(true),
        ..Default::default()
    };
    let local = with_input("file:///data/my%20universe")
        .resolve()
        .expect("file URL");
    assert_eq!(local.input, std::path::PathBuf::from("/data/my universe"));
    let e = with_input("s3://AKID:hunter2@bucket/u")
        .resolve()
        .expect_err("credentials");
    assert!(matches!(e, Error::Config(_)) && !e.to_string().contains("hunter2"));
}

#[test]
fn a_cs_transform_needs_time_major_output_and_is_recorded() {
    let base = || BuildOptions {
        input: Some("i".into()),
        output: Some("o".into()),
        no_target: Some(true),
        cs_transform: Some(CsTransform::Rank),
        ..Default::default()
    };
    let e = base().resolve().expect_err("symbol-major");
    assert!(
        matches!(&e, Error::Config(m) if m.contains("--cs-transform rank") && m.contains("--order time")),
        "{e}"
    );
    let time = |t: Option<CsTransform>| {
        BuildOptions {
            order: Some(RowOrder::Time),
            cs_transform: t,
            ..base()
        }
        .resolve()
        .expect("time-major")
    };
    let ranked = time(Some(CsTransform::Rank));
    assert_eq!(ranked.cs_transform, Some(CsTransform::Rank));
    assert_eq!(ranked.output_options()["cs_transform"], "rank");
    // Absent when not given: files built without it keep their recorded options.
    assert!(time(None).output_options().get("cs_transform").is_none());
    let winsorized = time(Some(CsTransform::Winsorize(0.01)));
    assert_eq!(
        winsorized.output_options()["cs_transform"],
        "winsorize=0.01"
    );
    assert_ne!(ranked.output_options(), winsorized.output_options());
    // The TOML key, flags over it.
    let file = BuildOptions::from_toml(
        "input = \"i\"\noutput = \"o\"\nno-target = true\norder = \"time\"\n\
         cs-transform = \"winsorize=1e-2\"\n",
    )
    .expect("valid toml");
    let cfg = file.clone().resolve().expect("valid");
    assert_eq!(cfg.cs_transform, Some(CsTransform::Winsorize(0.01)));
    let flags = BuildOptions {
        cs_transform: Some(CsTransform::Zscore),
        ..Default::default()
    };
    let cfg = file.merge(flags).resolve().expect("valid");
    assert_eq!(cfg.cs_transform, Some(CsTransform::Zscore));
    let e = BuildOptions::from_toml("cs-transform = \"winsorize=0.7\"").expect_err("range");
    assert!(e.to_string().contains("out of range"), "{e}");
}

#[test]
fn exclude_is_recorded_only_when_given() {
    let with = |exclude: Option<Vec<&str>>| {
        BuildOptions {
            input: Some("i".into()),
            output: Some("o".into()),
            no_target: Some(true),
            exclude: exclude.map(|v| v.into_iter().map(String::from).collect()),
            ..Default::default()
        }
        .resolve()
        .expect("valid")
        .output_options()
    };
    assert!(with(None).get("exclude").is_none());
    assert!(with(Some(vec![])).get("exclude").is_none());
    assert_eq!(
        with(Some(vec!["B", "A", "B"]))["exclude"],
        serde_json::json!(["A", "B"])
    );
}

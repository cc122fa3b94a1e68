//! Crash safety: a writer dropped, failed or killed before commit leaves nothing at the final path
//! (and never disturbs the file already there).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use spill::{ColumnSpec, DType, Layout, Role, SpillWriter, Symbol, WriteOptions};

use crate::common::{Case, Data};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn small_case() -> Case {
    Case {
        nrows: 4,
        columns: vec![(
            "x".into(),
            Role::Feature,
            Data::F32(vec![1.0, 2.0, 3.0, 4.0]),
        )],
        symbols: vec![Symbol {
            name: "S".into(),
            start: 0,
            stop: 4,
        }],
        build: Default::default(),
    }
}

#[test]
fn dropped_writer_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = small_case();
    let mut w = SpillWriter::create(
        dir.path().join("out.spill"),
        case.layout(),
        WriteOptions::default(),
    )
    .expect("create");
    case.columns[0].2.write(&mut w, 0, 0, 2).expect("write");
    assert_eq!(
        entries(dir.path()).len(),
        1,
        "the temporary file exists while writing"
    );
    drop(w);
    assert!(
        entries(dir.path()).is_empty(),
        "left behind: {:?}",
        entries(dir.path())
    );
}

#[test]
fn incomplete_commit_is_refused_and_keeps_the_previous_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = small_case();
    let out = dir.path().join("out.spill");
    case.write(&out, &[], WriteOptions::default());
    let before = std::fs::read(&out).expect("read");

    let mut w = SpillWriter::create(&out, case.layout(), WriteOptions::default()).expect("create");
    case.columns[0].2.write(&mut w, 0, 0, 3).expect("write");
    let err = w.finish(Default::default()).expect_err("3 of 4 rows");
    assert!(
        matches!(
            err,
            spill::Error::Incomplete {
                written: 3,
                nrows: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&out).expect("read"), before);
    assert_eq!(entries(dir.path()), vec!["out.spill".to_string()]);
}

#[test]
fn out_of_order_and_past_end_writes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let case = small_case();
    let mut w = SpillWriter::create(
        dir.path().join("o.spill"),
        case.layout(),
        WriteOptions::default(),
    )
    .expect("create");
    assert!(matches!(
        w.write(0, 1, &[1.0f32]),
        Err(spill::Error::OutOfOrder { expected: 0, .. })
    ));
    w.write(0, 0, &[1.0f32, 2.0]).expect("in order");
    assert!(
        matches!(
            w.write(0, 0, &[1.0f32]),
            Err(spill::Error::OutOfOrder { .. })
        ),
        "rewriting a row"
    );
    assert!(matches!(
        w.write(0, 2, &[1.0f32; 3]),
        Err(spill::Error::PastEnd { .. })
    ));
    assert!(matches!(
        w.write(0, 2, &[1.0f64]),
        Err(spill::Error::DTypeMismatch { .. })
    ));
    assert!(matches!(
        w.write(3, 0, &[1.0f32]),
        Err(spill::Error::NoSuchColumnIndex { .. })
    ));
}

const CHILD_ENV: &str = "SPILL_TEST_CHILD_WRITE";

/// Run by `killed_writer_leaves_no_file` in a child process: writes a large file slowly forever.
#[test]
#[ignore = "child process of killed_writer_leaves_no_file"]
fn child_writer() {
    let Some(out) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let nrows = 1u64 << 24;
    let cols = (0..4)
        .map(|i| ColumnSpec::new(format!("c{i}"), DType::F32, Role::Feature))
        .collect();
    let layout = Layout::new(
        nrows,
        cols,
        vec![Symbol {
            name: "S".into(),
            start: 0,
            stop: nrows,
        }],
    )
    .expect("layout");
    let mut w = SpillWriter::create(out, layout, WriteOptions::default()).expect("create");
    let buf = vec![1.5f32; 4096];
    let mut row = 0;
    loop {
        for c in 0..4 {
            w.write(c, row, &buf).expect("write");
        }
        row += 4096;
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn killed_writer_leaves_no_file_and_its_temp_is_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.spill");
    small_case().write(&out, &[], WriteOptions::default());
    let before = std::fs::read(&out).expect("read");

    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "crash::child_writer",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let deadline = Instant::now() + Duration::from_secs(30);
    while entries(dir.path()).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "child never created its temporary file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200)); // let it write for a while
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    assert_eq!(
        std::fs::read(&out).expect("read"),
        before,
        "the committed file changed"
    );
    let stale = spill::stale_temps(dir.path()).expect("list");
    assert_eq!(stale.len(), 1, "{:?}", entries(dir.path()));
    // A temp file of a live process (ours) is never called stale.
    let live = SpillWriter::create(
        dir.path().join("live.spill"),
        small_case().layout(),
        WriteOptions::default(),
    )
    .expect("create");
    assert_eq!(spill::stale_temps(dir.path()).expect("list"), stale);
    drop(live);
    std::fs::remove_file(&stale[0]).expect("remove stale");
    assert_eq!(entries(dir.path()), vec!["out.spill".to_string()]);
    assert!(spill::open(&out).is_ok());
}

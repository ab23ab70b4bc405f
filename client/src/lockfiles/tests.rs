//! The parsers against fixtures shaped (or, for npm, generated) by the real tools, and against
//! malformed input.

use std::path::Path;

use super::*;

/// Parses a fixture under `tests/fixtures/lockfiles/`.
fn fixture(relative: &str) -> Lockfile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/lockfiles")
        .join(relative);
    let text = std::fs::read_to_string(&path).expect("fixture is readable");
    parse(&path, &text).unwrap_or_else(|err| panic!("{relative}: {err}"))
}

/// Parses `text` as if it were the file `name`.
fn text(name: &str, text: &str) -> Result<Lockfile, LockfileError> {
    parse(Path::new(name), text)
}

fn has(lockfile: &Lockfile, name: &str, version: &str) -> bool {
    lockfile
        .packages
        .iter()
        .any(|p| p.name == name && p.version == version)
}

fn unresolved<'a>(lockfile: &'a Lockfile, name: &str) -> &'a Unresolved {
    lockfile
        .unresolved
        .iter()
        .find(|u| u.name == name)
        .unwrap_or_else(|| panic!("{name} is not unresolved in {:?}", lockfile.unresolved))
}

fn names(lockfile: &Lockfile) -> Vec<&str> {
    lockfile.packages.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn kinds_are_detected_by_file_name() {
    for (path, kind) in [
        ("web/package.json", LockfileKind::PackageJson),
        ("package-lock.json", LockfileKind::PackageLock),
        ("npm-shrinkwrap.json", LockfileKind::PackageLock),
        ("pnpm-lock.yaml", LockfileKind::PnpmLock),
        ("yarn.lock", LockfileKind::YarnLock),
        ("requirements.txt", LockfileKind::Requirements),
        ("requirements-dev.txt", LockfileKind::Requirements),
        ("ci/test-requirements.txt", LockfileKind::Requirements),
        ("requirements/prod.txt", LockfileKind::Requirements),
        ("requirements.in", LockfileKind::Requirements),
        ("pyproject.toml", LockfileKind::Pyproject),
        ("Pipfile.lock", LockfileKind::PipfileLock),
        ("poetry.lock", LockfileKind::PoetryLock),
        ("pom.xml", LockfileKind::Pom),
        ("build.gradle", LockfileKind::Gradle),
        ("app/build.gradle.kts", LockfileKind::GradleKts),
    ] {
        assert_eq!(LockfileKind::detect(Path::new(path)), Some(kind), "{path}");
        assert_eq!(kind.as_str().parse::<LockfileKind>().ok(), Some(kind));
    }
    for unknown in ["Gemfile.lock", "notes.txt", "Cargo.lock", "package.yaml"] {
        assert_eq!(LockfileKind::detect(Path::new(unknown)), None, "{unknown}");
    }
    let err = text("deps/Gemfile.lock", "").expect_err("unknown kind");
    assert!(matches!(err, LockfileError::UnknownKind { .. }));
    assert!(err.to_string().starts_with("deps/Gemfile.lock: "), "{err}");
    let forced = parse_as(
        LockfileKind::Requirements,
        Path::new("deps.lst"),
        "flask==2.3.3\n",
    )
    .expect("parses as requirements");
    assert!(has(&forced, "flask", "2.3.3"));
}

#[test]
fn package_locks_of_every_lockfile_version() {
    let v1 = fixture("npm/v1/package-lock.json");
    let v2 = fixture("npm/v2/package-lock.json");
    let v3 = fixture("npm/v3/package-lock.json");
    assert_eq!(v1.packages.len(), 23);
    assert_eq!(v2.packages.len(), 25);
    assert_eq!(v3.packages.len(), 25);
    for lock in [&v1, &v2, &v3] {
        assert_eq!(lock.kind, LockfileKind::PackageLock);
        assert_eq!(lock.ecosystem, Ecosystem::Npm);
        assert!(lock.unresolved.is_empty(), "{:?}", lock.unresolved);
        assert!(has(lock, "@babel/code-frame", "7.22.13"), "scoped name");
        assert!(has(lock, "lodash", "4.17.20"));
        assert!(has(lock, "ms", "2.1.3"));
        assert!(has(lock, "ms", "2.0.0"), "nested under debug/node_modules");
        assert!(
            !names(lock).contains(&"fw-fixture-app"),
            "the root is skipped"
        );
    }
    // The workspace's own package is a link, its nested dependency a real package.
    assert!(!names(&v3).contains(&"@fw-fixture/util"));
    assert!(has(&v3, "ms", "2.1.2"));
    assert_eq!(v2.packages, v3.packages);
}

#[test]
fn package_lock_errors_name_the_file_and_field() {
    let err = text(
        "package-lock.json",
        "{\n  \"lockfileVersion\": 3,\n  \"packages\": [\n",
    )
    .expect_err("truncated JSON");
    assert!(
        matches!(&err, LockfileError::Syntax { file, line: 4, .. } if file == "package-lock.json"),
        "{err:?}"
    );
    let err = text(
        "package-lock.json",
        r#"{"lockfileVersion": 7, "packages": {}}"#,
    )
    .expect_err("future version");
    assert!(matches!(err, LockfileError::Unsupported { .. }), "{err:?}");
    let err = text(
        "package-lock.json",
        r#"{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": 1}}}"#,
    )
    .expect_err("numeric version");
    assert_eq!(
        err.to_string(),
        r#"package-lock.json: packages["node_modules/a"].version: expected a string"#
    );
    let git = text(
        "package-lock.json",
        r#"{"lockfileVersion": 1, "dependencies": {
            "left-pad": {"version": "github:stevemao/left-pad#5b33b0a"},
            "alias": {"version": "npm:string-width@4.2.3"}}}"#,
    )
    .expect("parses");
    assert_eq!(git.unresolved.len(), 1);
    assert_eq!(
        unresolved(&git, "left-pad").spec,
        "github:stevemao/left-pad#5b33b0a"
    );
    assert!(
        has(&git, "string-width", "4.2.3"),
        "an alias locks the real package"
    );
}

#[test]
fn package_json_sends_pins_and_lists_ranges() {
    let manifest = fixture("npm/v3/package.json");
    assert_eq!(manifest.packages.len(), 6);
    assert!(has(&manifest, "@babel/code-frame", "7.22.13"));
    assert!(has(&manifest, "fsevents", "2.3.3"), "optionalDependencies");
    assert_eq!(manifest.unresolved.len(), 3);
    assert_eq!(unresolved(&manifest, "ms").spec, "^2.1.3");
    assert_eq!(unresolved(&manifest, "@types/node").spec, "~20.8.0");
    assert_eq!(
        unresolved(&manifest, "typescript").spec,
        ">=4.8 <6",
        "peerDependencies"
    );
    assert!(
        unresolved(&manifest, "ms")
            .reason
            .contains("audit the lockfile")
    );
    let odd = text(
        "package.json",
        r#"{"dependencies": {"a": "=1.0.0", "b": "npm:real-b@2.0.0", "c": "latest",
            "d": "git+https://example.com/d.git", "e": "workspace:*"}}"#,
    )
    .expect("parses");
    assert!(has(&odd, "a", "1.0.0"));
    assert!(has(&odd, "real-b", "2.0.0"));
    assert_eq!(odd.unresolved.len(), 3);
    assert!(
        unresolved(&odd, "d")
            .reason
            .contains("not a registry version")
    );
    let err = text("package.json", r#"{"devDependencies": {"a": ["1"]}}"#).expect_err("array");
    assert_eq!(
        err.to_string(),
        "package.json: devDependencies.a: expected a version string"
    );
}

#[test]
fn pnpm_locks_v6_and_v9() {
    let v6 = fixture("pnpm/v6/pnpm-lock.yaml");
    let v9 = fixture("pnpm/v9/pnpm-lock.yaml");
    assert_eq!(v6.packages.len(), 24);
    assert_eq!(v6.packages, v9.packages);
    for lock in [&v6, &v9] {
        assert!(lock.unresolved.is_empty(), "{:?}", lock.unresolved);
        assert!(has(lock, "react-dom", "18.2.0"), "peer suffix stripped");
        assert!(has(lock, "@types/node", "20.8.10"));
        assert!(has(lock, "ms", "2.0.0") && has(lock, "ms", "2.1.3"));
        assert!(lock.packages.iter().all(|p| !p.version.contains('(')));
    }
    let tarball = text(
        "pnpm-lock.yaml",
        "lockfileVersion: '9.0'\npackages:\n  '@scope/x@1.0.0':\n    resolution: {integrity: sha512-x}\n  y@https://example.com/y.tgz:\n    resolution: {tarball: https://example.com/y.tgz}\n",
    )
    .expect("parses");
    assert!(has(&tarball, "@scope/x", "1.0.0"));
    assert_eq!(unresolved(&tarball, "y").spec, "https://example.com/y.tgz");
    let git = text(
        "pnpm-lock.yaml",
        "lockfileVersion: '6.0'\npackages:\n  github.com/x/left-pad/5b33b0a:\n    resolution: {tarball: https://codeload.github.com/x/left-pad/tar.gz/5b33b0a}\n    name: left-pad\n    version: 1.3.0\n",
    )
    .expect("parses");
    assert_eq!(
        unresolved(&git, "left-pad").spec,
        "github.com/x/left-pad/5b33b0a"
    );
    let old = text("pnpm-lock.yaml", "lockfileVersion: 5.4\npackages: {}\n").expect_err("v5");
    assert!(old.to_string().contains("5.4 is not supported"), "{old}");
    let bad = text(
        "pnpm-lock.yaml",
        "lockfileVersion: '9.0'\npackages:\n  - [\n",
    )
    .expect_err("broken YAML");
    assert!(matches!(bad, LockfileError::Syntax { .. }), "{bad:?}");
}

#[test]
fn yarn_locks_classic_and_berry() {
    let classic = fixture("yarn/classic/yarn.lock");
    assert_eq!(classic.packages.len(), 23);
    assert!(has(&classic, "@babel/highlight", "7.25.9"));
    assert!(has(&classic, "ms", "2.0.0") && has(&classic, "ms", "2.1.3"));
    let berry = fixture("yarn/berry/yarn.lock");
    assert_eq!(berry.packages.len(), 43);
    assert!(berry.unresolved.is_empty(), "{:?}", berry.unresolved);
    assert!(
        has(&berry, "fsevents", "2.3.3"),
        "the npm entry a patch applies to"
    );
    assert!(has(&berry, "@isaacs/fs-minipass", "4.0.1"));
    assert!(
        !names(&berry).contains(&"fw-fixture-app"),
        "the workspace is skipped"
    );
    let aliased = text(
        "yarn.lock",
        "# yarn lockfile v1\n\n\"string-width-cjs@npm:string-width@^4.2.0\", string-width@^4.1.0:\n  version \"4.2.3\"\n  resolved \"https://registry.yarnpkg.com/string-width/-/string-width-4.2.3.tgz\"\n\nleft-pad@git+https://github.com/x/left-pad.git:\n  version \"1.3.0\"\n  resolved \"git+https://github.com/x/left-pad.git#abc\"\n",
    )
    .expect("parses");
    assert!(has(&aliased, "string-width", "4.2.3"));
    let local = text(
        "yarn.lock",
        "\"util@file:../util\":\n  version \"0.1.0\"\n\nms@^2.1.3:\n  version \"2.1.3\"\n",
    )
    .expect("parses");
    assert_eq!(local.packages.len(), 1, "{:?}", local.packages);
    assert_eq!(unresolved(&local, "util").spec, "file:../util");
    let mirrored = text(
        "yarn.lock",
        "__metadata:\n  version: 8\n\n\"ms@npm:^2.1.3\":\n  version: 2.1.3\n  resolution: \"ms@npm:2.1.3::__archiveUrl=https%3A%2F%2Fmirror.example%2Fms-2.1.3.tgz\"\n",
    )
    .expect("parses");
    assert!(has(&mirrored, "ms", "2.1.3"), "{:?}", mirrored.packages);
    let err = text(
        "yarn.lock",
        "__metadata:\n  version: 8\n\n\"ms@npm:^2.1.3\":\n  version: 2.1.3\n",
    )
    .expect_err("no resolution");
    assert_eq!(
        err.to_string(),
        r#"yarn.lock: "ms@npm:^2.1.3".resolution: missing"#
    );
    assert_eq!(
        unresolved(&aliased, "left-pad").spec,
        "git+https://github.com/x/left-pad.git#abc"
    );
    let err = text(
        "yarn.lock",
        "lodash@^4.17.0:\n  resolved \"https://x\"\n\nms@2.1.3:\n  version \"2.1.3\"\n",
    )
    .expect_err("no version");
    assert_eq!(
        err.to_string(),
        "yarn.lock:1: entry for lodash has no version"
    );
    let err = text("yarn.lock", "lodash@^4.17.0\n  version \"4.17.21\"\n").expect_err("header");
    assert!(
        matches!(err, LockfileError::Syntax { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn requirements_files() {
    let reqs = fixture("python/pip/requirements.txt");
    assert_eq!(reqs.ecosystem, Ecosystem::Pypi);
    assert_eq!(reqs.packages.len(), 7);
    assert!(
        has(&reqs, "requests", "2.19.1"),
        "extras, markers and hashes"
    );
    assert!(has(&reqs, "certifi", "2023.7.22"));
    assert!(has(&reqs, "pyyaml", "6.0.1"), "PEP 503 names");
    assert!(has(&reqs, "zope-interface", "6.0"));
    assert_eq!(reqs.unresolved.len(), 3);
    assert_eq!(unresolved(&reqs, "django").spec, ">=3.2,<4.0");
    assert_eq!(unresolved(&reqs, "numpy").spec, "*");
    assert!(unresolved(&reqs, "click").reason.contains("editable"));
    assert_eq!(reqs.notes.len(), 2);
    assert!(reqs.notes[0].contains("-r base.txt"), "{:?}", reqs.notes);
    let err = text("requirements.txt", "flask==2.3.3\n\nrequests==\n").expect_err("no version");
    assert_eq!(err.to_string(), "requirements.txt:3: \"==\" has no version");
    let err = text("requirements.txt", "flask=2.3.3\n").expect_err("one =");
    assert!(
        matches!(err, LockfileError::Syntax { line: 1, .. }),
        "{err:?}"
    );
    let err = text("requirements.txt", "--frobnicate\n").expect_err("unknown option");
    assert!(
        err.to_string().contains("unknown option --frobnicate"),
        "{err}"
    );
    let windows = text(
        "requirements.txt",
        "flask==2.3.3 \\\r\n    --hash=sha256:00\r\nidna==2.7\r\n",
    )
    .expect("CRLF");
    assert!(has(&windows, "flask", "2.3.3") && has(&windows, "idna", "2.7"));
    let wild = text("requirements.txt", "Django==4.2.*\nfoo===weird-1\n").expect("parses");
    assert_eq!(unresolved(&wild, "django").spec, "==4.2.*");
    assert!(has(&wild, "foo", "weird-1"), "arbitrary equality is exact");
}

#[test]
fn pyproject_pep621_and_poetry() {
    let pep621 = fixture("python/pep621/pyproject.toml");
    assert_eq!(pep621.packages.len(), 6);
    assert!(has(&pep621, "flask", "2.3.3"));
    assert!(
        has(&pep621, "typing-extensions", "4.8.0"),
        "markers ignored"
    );
    assert!(has(&pep621, "psycopg", "3.1.12"), "optional-dependencies");
    assert!(has(&pep621, "ruff", "0.1.3"), "dependency-groups");
    assert_eq!(pep621.unresolved.len(), 5);
    assert_eq!(
        unresolved(&pep621, "my-lib").spec,
        "@ https://example.com/wheels/my_lib-1.0-py3-none-any.whl"
    );
    let poetry = fixture("python/poetry/pyproject.toml");
    assert_eq!(poetry.packages.len(), 5);
    assert!(
        has(&poetry, "requests", "2.19.1"),
        "a bare version is exact in Poetry"
    );
    assert!(has(&poetry, "urllib3", "1.26.18"));
    assert!(has(&poetry, "numpy", "1.24.4") && has(&poetry, "numpy", "1.26.1"));
    assert_eq!(poetry.unresolved.len(), 3);
    assert_eq!(unresolved(&poetry, "django").spec, "^4.2");
    assert!(!names(&poetry).contains(&"python"));
    let err = text(
        "pyproject.toml",
        "[project]\nname = \"x\"\ndependencies = [\"requests==2.31.0\", \"[bad]\"]\n",
    )
    .expect_err("not a requirement");
    assert!(
        err.to_string()
            .starts_with("pyproject.toml: project.dependencies[1]: "),
        "{err}"
    );
    let err = text("pyproject.toml", "[project]\ndependencies = [\n").expect_err("bad TOML");
    assert!(matches!(err, LockfileError::Syntax { .. }), "{err:?}");
}

#[test]
fn python_lockfiles() {
    let poetry = fixture("python/poetry/poetry.lock");
    assert_eq!(poetry.packages.len(), 7);
    assert!(has(&poetry, "django", "4.2.6"));
    assert!(has(&poetry, "typing-extensions", "4.8.0"));
    assert!(unresolved(&poetry, "mylib").reason.contains("git"));
    let pipenv = fixture("python/pipenv/Pipfile.lock");
    assert_eq!(pipenv.packages.len(), 8);
    assert!(has(&pipenv, "flask", "2.3.3"));
    assert!(has(&pipenv, "pytest", "7.4.2"), "develop section");
    assert_eq!(
        unresolved(&pipenv, "mylib").spec,
        "https://github.com/example/mylib.git"
    );
    let err = text("poetry.lock", "[[package]]\nname = \"x\"\n").expect_err("no version");
    assert_eq!(
        err.to_string(),
        "poetry.lock: package[0].version: missing or not a string"
    );
    let err = text(
        "Pipfile.lock",
        r#"{"default": {"x": {"version": "==not a version"}}}"#,
    )
    .expect_err("bad version");
    assert!(
        err.to_string()
            .starts_with("Pipfile.lock: default.x.version: "),
        "{err}"
    );
}

#[test]
fn maven_poms() {
    let pom = fixture("jvm/maven/pom.xml");
    assert_eq!(pom.ecosystem, Ecosystem::Maven);
    assert_eq!(pom.packages.len(), 6);
    assert!(
        has(&pom, "org.apache.logging.log4j:log4j-core", "2.14.1"),
        "a property"
    );
    assert!(
        has(&pom, "com.fasterxml.jackson:jackson-bom", "2.15.3"),
        "a property of a property"
    );
    assert!(
        has(&pom, "com.google.guava:guava", "32.1.3-jre"),
        "dependencyManagement"
    );
    assert!(
        has(&pom, "com.example:fw-fixture-model", "1.4.0-SNAPSHOT"),
        "project coordinates"
    );
    assert!(!names(&pom).contains(&"org.apache.maven.plugins:maven-compiler-plugin"));
    assert_eq!(pom.unresolved.len(), 4);
    assert_eq!(
        unresolved(&pom, "org.springframework:spring-core").reason,
        "property ${spring.version} is not defined in this file"
    );
    assert_eq!(
        unresolved(&pom, "commons-io:commons-io").spec,
        "[2.11.0,3.0)"
    );
    assert!(
        unresolved(&pom, "org.junit.jupiter:junit-jupiter")
            .reason
            .contains("BOM")
    );
    let err = text(
        "pom.xml",
        "<project>\n  <dependencies>\n    <dependency>\n  </dependencies>\n</project>\n",
    )
    .expect_err("mismatched tags");
    assert!(
        matches!(err, LockfileError::Syntax { line: 4, .. }),
        "{err:?}"
    );
    let err = text(
        "pom.xml",
        "<project>\n<dependencies>\n<dependency>\n<groupId>g</groupId>\n</dependency>\n</dependencies>\n</project>\n",
    )
    .expect_err("no artifactId");
    assert_eq!(
        err.to_string(),
        "pom.xml:3: <dependency> has no <artifactId>"
    );
}

#[test]
fn gradle_scripts() {
    let groovy = fixture("jvm/gradle/build.gradle");
    assert_eq!(groovy.packages.len(), 8);
    assert!(
        has(&groovy, "org.apache.logging.log4j:log4j-core", "2.14.1"),
        "ext.log4jVersion"
    );
    assert!(
        has(
            &groovy,
            "com.fasterxml.jackson.core:jackson-databind",
            "2.15.3"
        ),
        "map notation, ext block"
    );
    assert!(
        has(
            &groovy,
            "org.springframework.cloud:spring-cloud-dependencies",
            "2022.0.4"
        ),
        "set() in ext"
    );
    assert!(
        has(&groovy, "org.junit.jupiter:junit-jupiter", "5.10.0"),
        "def"
    );
    assert!(
        has(&groovy, "org.apache.commons:commons-lang3", "3.13.0"),
        "closure stripped"
    );
    assert!(!names(&groovy).contains(&"com.example:commented-out"));
    assert_eq!(groovy.unresolved.len(), 4);
    assert_eq!(
        unresolved(&groovy, "org.postgresql:postgresql").spec,
        "42.+"
    );
    assert!(
        unresolved(&groovy, "com.h2database:h2")
            .reason
            .contains("h2Version")
    );
    assert!(
        unresolved(&groovy, "libs.assertj.core")
            .reason
            .contains("version catalog")
    );
    let kotlin = fixture("jvm/gradle-kts/build.gradle.kts");
    assert_eq!(kotlin.kind, LockfileKind::GradleKts);
    assert_eq!(kotlin.packages.len(), 8);
    assert!(has(&kotlin, "io.ktor:ktor-server-core", "2.3.5"), "$ver");
    assert!(
        has(&kotlin, "io.ktor:ktor-server-netty", "2.3.5"),
        "${{ver}}"
    );
    assert!(
        has(
            &kotlin,
            "com.fasterxml.jackson.module:jackson-module-kotlin",
            "2.15.3"
        ),
        "by extra, map notation"
    );
    assert!(
        has(&kotlin, "org.jetbrains.exposed:exposed-core", "0.44.1"),
        "extra[] and property()"
    );
    assert!(
        has(&kotlin, "software.amazon.awssdk:bom", "2.21.10"),
        "platform()"
    );
    assert!(
        !names(&kotlin).contains(&"com.example:hidden"),
        "block comments"
    );
    assert_eq!(kotlin.unresolved.len(), 2);
    assert_eq!(
        unresolved(&kotlin, "org.apache.logging.log4j:log4j-api").spec,
        "$log4jVersion"
    );
    let err = text(
        "build.gradle",
        "dependencies {\n    implementation 'a:b:1.0\n}\n",
    )
    .expect_err("unterminated string");
    assert_eq!(
        err.to_string(),
        "build.gradle:2: unterminated string literal"
    );
}

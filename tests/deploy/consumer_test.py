#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Builds docs/getting-started.md's main.cpp against ringwork the two documented ways, runs it, checks answers.
"""Usage: consumer_test.py installed|subproject SOURCE_ROOT BUILD_ROOT

installed:  `meson install -C BUILD_ROOT --destdir TMP --no-rebuild --tags devel` (the library of
            this build, its headers and ringwork.pc),
            then main.cpp compiled with the doc's `c++ ... $(pkg-config --cflags --libs ringwork)`
            line and with the doc's CMakeLists.txt, PKG_CONFIG_PATH pointing at a copy of the
            installed ringwork.pc whose prefix is moved into TMP.
subproject: a consumer project made of the doc's meson.build and main.cpp, with
            subprojects/ringwork a symlink to SOURCE_ROOT, configured with
            --wrap-mode=nodownload --force-fallback-for=ringwork (so an installed ringwork is
            not picked instead) and built; this compiles the library again (minutes).

Each program then runs with PORT=0 and must answer /, /hello/:name and /slow, log them, and
exit 0 on SIGTERM.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import deploy_util as du  # noqa: E402

DOC = "getting-started.md"
# The command docs/getting-started.md shows for the installed library (checked to be there).
PKG_CONFIG_COMMAND = "c++ -std=c++20 -O2 main.cpp $(pkg-config --cflags --libs ringwork) -o hello"


def check_program(tmp: pathlib.Path, name: str, exe: pathlib.Path) -> None:
    app = du.Child(name, [str(exe)], tmp, env={"PORT": "0"})
    port = int(app.wait_for(r"^listening on http://127\.0\.0\.1:(\d+)/$", 30).group(1))
    r = du.get("127.0.0.1", port, "/")
    du.check(r.status == 200 and r.text == "Hello, World!\n", f"{name}: GET / -> {r.status} {r.text!r}")
    r = du.get("127.0.0.1", port, "/hello/ringwork%20fan")
    du.check(r.status == 200 and r.text == "Hello, ringwork fan!\n", f"{name}: /hello -> {r.status} {r.text!r}")
    r = du.get("127.0.0.1", port, "/slow")
    du.check(r.status == 200 and r.json() == {"waited_ms": 50}, f"{name}: /slow -> {r.status} {r.text!r}")
    r = du.get("127.0.0.1", port, "/nope")
    du.check(r.status == 404, f"{name}: /nope -> {r.status}")
    rc = app.stop(signal.SIGTERM, 20)
    du.check(rc == 0, f"{name}: exit status {rc} after SIGTERM\n{app.output()}")
    du.check("/hello/ringwork%20fan" in app.stdout(), f"{name}: no access log line\n{app.output()}")
    du.log(f"ok   {name} answered /, /hello/:name, /slow and 404, logged them, exited 0 on SIGTERM")


def installed(root: pathlib.Path, build: pathlib.Path, tmp: pathlib.Path) -> None:
    du.check(PKG_CONFIG_COMMAND in (root / "docs" / DOC).read_text(encoding="utf-8"),
             f"docs/{DOC} no longer shows `{PKG_CONFIG_COMMAND}`: update this test with it")
    for tool in ("meson", "pkg-config", "c++"):
        du.check(shutil.which(tool) is not None, f"{tool} is not on PATH")
    destdir = tmp / "destdir"
    # --tags devel: the library, its headers and ringwork.pc, all this test's `depends:` builds
    # (`meson test` rebuilds only what the selected tests depend on).
    du.run(["meson", "install", "-C", str(build), "--destdir", str(destdir), "--no-rebuild", "--quiet",
            "--tags", "devel"], 300)
    pcs = sorted(destdir.glob("**/pkgconfig/ringwork.pc"))
    du.check(len(pcs) == 1, f"expected one installed ringwork.pc under {destdir}, found {pcs}")
    pc_text = pcs[0].read_text(encoding="utf-8")
    du.log(f"installed {pcs[0].relative_to(destdir)}:\n{pc_text}")
    # The .pc names the real prefix (/usr/local); moved under DESTDIR it is what a build with
    # --prefix=DESTDIR/usr/local would install. (PKG_CONFIG_SYSROOT_DIR would also move the
    # paths of fmt, liburing and zlib into DESTDIR, which CMake rejects as missing.)
    prefix = re.search(r"^prefix=(.*)$", pc_text, re.M)
    du.check(prefix is not None, "ringwork.pc has no prefix= line")
    pc_dir = tmp / "pkgconfig"
    pc_dir.mkdir()
    (pc_dir / "ringwork.pc").write_text(
        pc_text.replace(prefix.group(0), f"prefix={destdir}{prefix.group(1)}", 1), encoding="utf-8")
    env = dict(os.environ, PKG_CONFIG_PATH=str(pc_dir))
    flags = du.run(["pkg-config", "--cflags", "--libs", "ringwork"], 30, env=env).stdout.strip()
    du.log(f"pkg-config --cflags --libs ringwork: {flags}")
    du.check(str(destdir) in flags, "pkg-config flags do not point into the DESTDIR")

    # (a) the one-line build
    work = tmp / "plain"
    work.mkdir()
    shutil.copy(root / "tests/deploy/getting_started/main.cpp", work / "main.cpp")
    du.run(["bash", "-c", PKG_CONFIG_COMMAND], 600, cwd=work, env=env)
    check_program(tmp, "hello-pkg-config", work / "hello")

    # (b) the CMake project
    cmake = shutil.which("cmake")
    if cmake is None:
        du.log("note: cmake is not installed; the CMakeLists.txt of the doc was not built")
        return
    src = tmp / "cmake-src"
    src.mkdir()
    shutil.copy(root / "tests/deploy/getting_started/main.cpp", src / "main.cpp")
    shutil.copy(root / "tests/deploy/getting_started/CMakeLists.txt", src / "CMakeLists.txt")
    du.run([cmake, "-S", str(src), "-B", str(tmp / "cmake-build"), "-DCMAKE_BUILD_TYPE=Release"], 120, env=env)
    du.run([cmake, "--build", str(tmp / "cmake-build"), "-j", "2"], 600, env=env)
    check_program(tmp, "hello-cmake", tmp / "cmake-build" / "hello-ringwork")


def subproject(root: pathlib.Path, tmp: pathlib.Path) -> None:
    du.check(shutil.which("meson") is not None and shutil.which("ninja") is not None, "meson/ninja not on PATH")
    project = tmp / "consumer"
    (project / "subprojects").mkdir(parents=True)
    shutil.copy(root / "tests/deploy/getting_started/main.cpp", project / "main.cpp")
    shutil.copy(root / "tests/deploy/getting_started/meson.build", project / "meson.build")
    (project / "subprojects" / "ringwork").symlink_to(root, target_is_directory=True)
    build = project / "build"
    du.run(["meson", "setup", str(build), str(project), "--wrap-mode=nodownload",
            "--force-fallback-for=ringwork"], 300)
    start = time.monotonic()
    du.run(["ninja", "-C", str(build), "-j", "2"], 1500)
    du.log(f"the consumer build (ringwork library + main.cpp) took {time.monotonic() - start:.0f} s")
    # The meson.build's default_options turned the subproject's tests, apps and benchmarks off.
    sub = build / "subprojects" / "ringwork"
    for part in ("tests", "apps", "benchmarks"):
        du.check(not (sub / part).exists(), f"the subproject built its {part}: default_options ignored?")
    check_program(tmp, "hello-subproject", build / "hello-ringwork")


def main() -> None:
    mode, root, build = sys.argv[1], pathlib.Path(sys.argv[2]).resolve(), pathlib.Path(sys.argv[3]).resolve()
    du.check(mode in ("installed", "subproject"), f"unknown mode {mode}")

    def body(tmp: pathlib.Path) -> None:
        du.check_doc_shows(root, DOC, "getting_started/main.cpp")
        if mode == "installed":
            du.check_doc_shows(root, DOC, "getting_started/CMakeLists.txt")
            installed(root, build, tmp)
        else:
            du.check_doc_shows(root, DOC, "getting_started/meson.build")
            subproject(root, tmp)

    du.run_test(f"deploy_consumer_{mode}", body)


if __name__ == "__main__":
    main()

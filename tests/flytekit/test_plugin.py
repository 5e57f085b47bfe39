#!/usr/bin/python3
"""The flytekit plugin's decisions, with the real flytekit and a stand-in
kiln that records how it was called and answers as told: which kiln
flags builder_options and flytekit's environment variables become, what
should_build answers for each exit of `kiln inspect`, and that a failed
or misnamed build raises flytekit exceptions carrying kiln's message and
exit code. (tests/e2e/test_flytekit_plugin.sh runs the real kiln.)

Skips (exit 77) without flytekit, as tests/flytekit/name_table.py does.
"""
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SRC, "plugins", "flytekitplugins-kiln"))

from name_table import import_flytekit  # noqa: E402

if import_flytekit() is None:
    if os.environ.get("KILN_REQUIRE_FLYTEKIT") == "1":
        sys.exit("FAIL: flytekit is not importable")
    print("SKIP: flytekit is not importable")
    sys.exit(77)

from flytekit.exceptions.user import FlyteAssertion, FlyteUserException  # noqa: E402
from flytekit.image_spec.image_spec import ImageSpec  # noqa: E402

from flytekitplugins.kiln import builder  # noqa: E402

# The stand-in: logs argv (one JSON list per line) and the stdin, then
# does what $FAKE_KILN_<COMMAND> says: "exit N [message]" or "name".
FAKE = r'''#!/usr/bin/python3
import json, os, sys
d = os.environ["FAKE_KILN_DIR"]
with open(os.path.join(d, "calls"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
stdin = sys.stdin.read()
with open(os.path.join(d, "stdin-" + sys.argv[1]), "w") as f:
    f.write(stdin)
how = os.environ.get("FAKE_KILN_" + sys.argv[1].upper(), "exit 0")
if how.startswith("name "):
    _, name, ident = how.split(" ")
    print(json.dumps({"name": name, "id": ident, "tag": name.rsplit(":", 1)[1],
                      "repository": name.rsplit(":", 1)[0]}))
    sys.exit(0)
parts = how.split(" ", 2)
if len(parts) > 2:
    print("progress line", file=sys.stderr)
    print("kiln: error: " + parts[2], file=sys.stderr)
sys.exit(int(parts[1]))
'''


class PluginTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        fake = os.path.join(self.dir, "kiln")
        with open(fake, "w") as f:
            f.write(FAKE)
        os.chmod(fake, 0o755)
        self.env = dict(os.environ)
        for k in list(os.environ):
            if k.startswith(("FAKE_KILN_", "FLYTE_")):
                del os.environ[k]
        os.environ.update(KILN=fake, FAKE_KILN_DIR=self.dir)

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.env)
        self.tmp.cleanup()

    def calls(self):
        path = os.path.join(self.dir, "calls")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f]

    def spec(self, **kw):
        kw.setdefault("name", "p")
        kw.setdefault("registry", "127.0.0.1:5000/x")
        return ImageSpec(builder="kiln", **kw)

    def agree(self, spec):
        os.environ["FAKE_KILN_NAME"] = f"name {spec.image_name()} {spec.id}"

    def test_options_become_flags(self):
        s = self.spec(builder_options={
            "cache_repo": "127.0.0.1:5000/cache", "jobs": 2, "network": "none",
            "allow_host": ["127.0.0.1:8080", "localhost:9"], "outputs": "oci:/tmp/o:t",
            "flytekit_requirement": "none", "extra_args": ["--no-cache"],
            "someone_elses": "ignored"})
        self.agree(s)
        self.assertEqual(builder.KilnImageSpecBuilder().build_image(s), s.image_name())
        build = self.calls()[-1]
        self.assertEqual(build[:3], ["build", "-f", "-"])
        for flag in (["--cache-repo", "127.0.0.1:5000/cache"], ["--jobs", "2"],
                     ["--network", "none"], ["--allow-host", "127.0.0.1:8080"],
                     ["--allow-host", "localhost:9"], ["-o", "oci:/tmp/o:t"],
                     ["--flytekit-requirement", "none"]):
            self.assertTrue(any(build[j:j + 2] == flag for j in range(len(build))),
                            f"{flag} in {build}")
        self.assertIn("--no-cache", build)
        self.assertIn("--push", build)
        self.assertNotIn("ignored", " ".join(build))
        with open(os.path.join(self.dir, "stdin-build")) as f:
            self.assertIn("name: p", f.read())

    def test_default_flytekit_requirement_and_bad_jobs(self):
        import flytekit
        s = self.spec()
        self.agree(s)
        builder.KilnImageSpecBuilder().build_image(s)
        build = self.calls()[-1]
        want = "flytekit" if "dev" in flytekit.__version__ else f"flytekit=={flytekit.__version__}"
        i = build.index("--flytekit-requirement")
        self.assertEqual(build[i + 1], want)
        s = self.spec(builder_options={"jobs": "2"})
        self.agree(s)
        with self.assertRaisesRegex(FlyteAssertion, "jobs.*integer"):
            builder.KilnImageSpecBuilder().build_image(s)

    def test_push_and_force_from_environment(self):
        os.environ["FLYTE_PUSH_IMAGE_SPEC"] = "false"
        os.environ["XDG_CACHE_HOME"] = os.path.join(self.dir, "cache")
        s = self.spec()
        self.agree(s)
        builder.KilnImageSpecBuilder().build_image(s)
        build = self.calls()[-1]
        self.assertNotIn("--push", build)
        out = build[build.index("-o") + 1]
        self.assertEqual(out, f"oci:{self.dir}/cache/flytekitplugins-kiln/images:{s.tag}")
        os.environ["FLYTE_PUSH_IMAGE_SPEC"] = "1"
        os.environ["FLYTE_FORCE_PUSH_IMAGE_SPEC"] = "yes"  # flytekit's str2bool
        s = self.spec(name="q")
        self.agree(s)
        self.assertTrue(builder.KilnImageSpecBuilder().should_build(s))
        builder.KilnImageSpecBuilder().build_image(s)
        build = self.calls()[-1]
        self.assertIn("--push", build)
        self.assertIn("--force", build)
        self.assertNotIn("-o", build)

    def test_should_build_asks_kiln(self):
        s = self.spec()
        b = builder.KilnImageSpecBuilder()
        os.environ["FAKE_KILN_INSPECT"] = "exit 0"
        self.assertFalse(b.should_build(s))
        self.assertEqual(self.calls()[-1][-1], f"docker://{s.image_name()}")
        os.environ["FAKE_KILN_INSPECT"] = "exit 3 not found"
        self.assertTrue(b.should_build(s))
        # the registry cannot be asked: build (never "assume it exists")
        os.environ["FAKE_KILN_INSPECT"] = "exit 5 registry down"
        self.assertTrue(b.should_build(s))
        os.environ["FLYTE_IMG_FAST_FAIL"] = "true"  # read when a spec is made
        with self.assertRaisesRegex(RuntimeError, "registry down"):
            b.should_build(self.spec())

    def test_failures_raise_flytekit_exceptions(self):
        s = self.spec()
        self.agree(s)
        os.environ["FAKE_KILN_BUILD"] = "exit 9 step 3 (commands) failed: exit status 2"
        with self.assertRaises(FlyteUserException) as cm:
            builder.KilnImageSpecBuilder().build_image(s)
        self.assertIsInstance(cm.exception, builder.KilnBuildError)
        self.assertEqual(cm.exception.exit_code, 9)
        self.assertIn("step 3 (commands) failed: exit status 2", str(cm.exception))
        self.assertIn("a build step failed", str(cm.exception))
        # kiln naming it otherwise: refused before any build, both values given
        del os.environ["FAKE_KILN_BUILD"]
        os.environ["FAKE_KILN_NAME"] = "name 127.0.0.1:5000/x/p:other someid"
        n = len(self.calls())
        with self.assertRaises(builder.KilnNameMismatch) as cm:
            builder.KilnImageSpecBuilder().build_image(s)
        msg = str(cm.exception)
        for part in ("127.0.0.1:5000/x/p:other", "someid", s.image_name(), s.id):
            self.assertIn(part, msg)
        self.assertFalse(any(c[0] == "build" for c in self.calls()[n:]), "no build after it")

    def test_values_without_a_yaml_form_are_refused(self):
        import pathlib
        s = self.spec(env={"P": pathlib.Path("/x")})
        with self.assertRaisesRegex(builder.KilnNameMismatch, "PosixPath"):
            builder.KilnImageSpecBuilder().build_image(s)
        self.assertEqual(self.calls(), [])


if __name__ == "__main__":
    unittest.main(verbosity=1)

#!/usr/bin/python3
"""Runs a task of a `pyflyte package` archive the way Flyte's propeller
would, but locally: its container command with the template's
placeholders filled with local paths. flytekit (the real one) reads the
archive and writes and reads the literals.

  task_run.py image   PKG.tgz TASK                 the task template's image
  task_run.py prepare PKG.tgz TASK DIR MOUNT x=INT...
      writes DIR/inputs.pb and DIR/fast.tar.gz (the code pyflyte packaged)
      and prints the task's command, shell-quoted, with placeholders
      pointing at MOUNT (where DIR is seen inside the container)
  task_run.py output  DIR                          prints output o0 (a str)
"""
import os
import shlex
import sys
import tarfile


def template(pkg, task):
    """The task's template and the fast-registration archive's bytes (None
    without one), read from the archive's members (nothing extracted)."""
    from flyteidl.admin import task_pb2

    found, fast = None, None
    with tarfile.open(pkg) as t:
        for m in t.getmembers():
            if not m.isfile():
                continue
            base = os.path.basename(m.name)
            if base.startswith("fast") and base.endswith(".tar.gz"):
                fast = t.extractfile(m).read()
            elif base.endswith(".pb") and found is None:
                spec = task_pb2.TaskSpec()
                try:
                    spec.ParseFromString(t.extractfile(m).read())
                except Exception:
                    continue
                if spec.template.id.name == task and spec.template.HasField("container"):
                    found = spec.template
    if found is None:
        sys.exit(f"task_run.py: no task {task} in {pkg}")
    return found, fast


def main():
    cmd = sys.argv[1]
    if cmd == "image":
        t, _ = template(sys.argv[2], sys.argv[3])
        print(t.container.image)
        return 0
    if cmd == "prepare":
        pkg, task, out, mount = sys.argv[2:6]
        from flytekit.core.context_manager import FlyteContextManager
        from flytekit.core.type_engine import TypeEngine
        from flytekit.core.utils import write_proto_to_file
        from flytekit.models.literals import LiteralMap

        t, fast = template(pkg, task)
        ctx = FlyteContextManager.current_context()
        lits = {}
        for kv in sys.argv[6:]:
            k, v = kv.split("=", 1)
            lits[k] = TypeEngine.to_literal(ctx, int(v), int, TypeEngine.to_literal_type(int))
        write_proto_to_file(LiteralMap(literals=lits).to_flyte_idl(),
                            os.path.join(out, "inputs.pb"))
        subst = {
            "{{ .remote_package_path }}": f"{mount}/fast.tar.gz",
            "{{.input}}": f"{mount}/inputs.pb",
            "{{.outputPrefix}}": f"{mount}/out",
            "{{.rawOutputDataPrefix}}": f"{mount}/raw",
            "{{.checkpointOutputPrefix}}": f"{mount}/checkpoint",
            "{{.prevCheckpointPrefix}}": "",
        }
        if fast is not None:
            with open(os.path.join(out, "fast.tar.gz"), "wb") as fh:
                fh.write(fast)
        args = []
        for a in t.container.args:
            for k, v in subst.items():
                if k in a:
                    a = a.replace(k, v)
            args.append(shlex.quote(a))
        print(" ".join(args))
        return 0
    if cmd == "output":
        from flyteidl.core import literals_pb2

        lm = literals_pb2.LiteralMap()
        with open(os.path.join(sys.argv[2], "out", "outputs.pb"), "rb") as fh:
            lm.ParseFromString(fh.read())
        print(lm.literals["o0"].scalar.primitive.string_value)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""The Conda side of tests/tests/conda.rs, with the real py-rattler and conda-package-handling.

    conda_client.py build OUT_DIR NAME VERSION BUILD DEPENDS_JSON CONTENT EXTENSION
        makes OUT_DIR/NAME-VERSION-BUILD.EXTENSION (noarch; EXTENSION is `conda` or `tar.bz2`), whose
        one file share/arca/NAME.txt holds CONTENT
    conda_client.py install CHANNEL_URL PREFIX SPEC...
        solves SPEC... from the channel alone (linux-64 and noarch) and installs them into PREFIX;
        prints the solution, one "name version" a line
"""
import asyncio
import hashlib
import json
import os
import sys
import tempfile

import conda_package_handling.api as cph
import rattler


def build(out_dir, name, version, build_string, depends, content, extension):
    src = tempfile.mkdtemp()
    payload = f"share/arca/{name}.txt"
    os.makedirs(os.path.join(src, "info"))
    os.makedirs(os.path.join(src, "share", "arca"))
    data = content.encode()
    with open(os.path.join(src, payload), "wb") as f:
        f.write(data)
    index = {
        "name": name,
        "version": version,
        "build": build_string,
        "build_number": 0,
        "depends": depends,
        "subdir": "noarch",
        "noarch": "generic",
        "license": "MIT",
        "timestamp": 1700000000000,
    }
    paths = {
        "paths": [
            {
                "_path": payload,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
        ],
        "paths_version": 1,
    }
    for file, document in (("index.json", index), ("paths.json", paths)):
        with open(os.path.join(src, "info", file), "w") as f:
            json.dump(document, f)
    with open(os.path.join(src, "info", "files"), "w") as f:
        f.write(payload + "\n")
    files = ["info/index.json", "info/paths.json", "info/files", payload]
    cph.create(src, files, f"{name}-{version}-{build_string}.{extension}", out_folder=out_dir)


async def install(channel, prefix, specs):
    # The client that reads credentials (RATTLER_AUTH_FILE) for both the repodata and the packages.
    client = rattler.Client.authenticated_client()
    gateway = rattler.Gateway(client=client)
    records = await rattler.solve([channel], specs, gateway=gateway, platforms=["linux-64", "noarch"])
    await rattler.install(records, target_prefix=prefix, show_progress=False, client=client)
    for record in sorted(records, key=lambda r: r.name.normalized):
        print(f"{record.name.normalized} {record.version}")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "build":
        out_dir, name, version, build_string, depends, content, extension = args
        build(out_dir, name, version, build_string, json.loads(depends), content, extension)
    elif command == "install":
        channel, prefix, *specs = args
        asyncio.run(install(channel, prefix, specs))
        # py-rattler's native threads now and then crash the interpreter's teardown (killed by a
        # signal after the install finished and printed): leave without one.
        sys.stdout.flush()
        os._exit(0)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()

"""The Hugging Face side of tests/tests/huggingface.rs, with the real huggingface_hub.

HF_ENDPOINT (the registry's URL) and HF_TOKEN come from the environment.

    hf_client.py upload REPO_ID REPO_TYPE FOLDER MESSAGE
        creates the repository (exist_ok) and uploads FOLDER as one commit; prints the commit id
    hf_client.py tag REPO_ID REPO_TYPE TAG REVISION
        tags REVISION
    hf_client.py download REPO_ID REPO_TYPE REVISION PATH
        hf_hub_download of one file; prints its local path
    hf_client.py snapshot REPO_ID REPO_TYPE REVISION DIR
        snapshot_download into DIR; prints the commit the revision named
    hf_client.py info REPO_ID REPO_TYPE REVISION
        prints repo_info's sha, the file list and the refs as JSON
"""
import json
import sys

from huggingface_hub import HfApi, hf_hub_download, snapshot_download


def main():
    command, repo_id, repo_type, *args = sys.argv[1:]
    api = HfApi()
    if command == "upload":
        folder, message = args
        api.create_repo(repo_id, repo_type=repo_type, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id, repo_type=repo_type, folder_path=folder, commit_message=message
        )
        print(info.oid)
    elif command == "tag":
        tag, revision = args
        api.create_tag(repo_id, repo_type=repo_type, tag=tag, revision=revision)
    elif command == "download":
        revision, path = args
        print(hf_hub_download(repo_id, path, repo_type=repo_type, revision=revision))
    elif command == "snapshot":
        revision, local_dir = args
        snapshot_download(repo_id, repo_type=repo_type, revision=revision, local_dir=local_dir)
        print(api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha)
    elif command == "info":
        (revision,) = args
        info = api.repo_info(repo_id, repo_type=repo_type, revision=revision)
        refs = api.list_repo_refs(repo_id, repo_type=repo_type)
        print(
            json.dumps(
                {
                    "sha": info.sha,
                    "files": sorted(api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)),
                    "branches": sorted(b.name for b in refs.branches),
                    "tags": sorted(t.name for t in refs.tags),
                    "downloads": info.downloads,
                }
            )
        )
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()

"""Downloads from the Hugging Face Hub, into its own cache: a model's snapshot and a dataset repo's file.
An offline lookup finds what an earlier download left there without asking the network."""

from __future__ import annotations

from pathlib import Path

from anvil.errors import AnvilError

MODEL_FILES = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"]


def snapshot(repo: str, revision: str | None, offline: bool = False) -> tuple[Path, str]:
    """The local snapshot folder of a model repo and the commit it is at (downloaded unless `offline`)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=MODEL_FILES, local_files_only=offline))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise AnvilError(
            f"hf:{repo}: cannot download the weights ({type(e).__name__}). Offline, download them elsewhere "
            f'(`hf download {repo} --local-dir DIR`), copy DIR here and use source = "path:DIR"'
        ) from None
    return folder, folder.name  # the snapshot folder is named after its commit


def dataset_file(where: str, shown_as: str) -> Path:
    """A file of a dataset repo (`ORG/NAME/FILE`), downloaded into the Hugging Face cache once."""
    org, name, filename = where.split("/", 2)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(f"{org}/{name}", filename, repo_type="dataset"))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        raise AnvilError(
            f"{shown_as}: cannot download the benchmark rows ({type(e).__name__}). Offline, download the file "
            f"elsewhere (`hf download --repo-type dataset {org}/{name} {filename}`), copy it here "
            f'and use data = "path:FILE"'
        ) from None

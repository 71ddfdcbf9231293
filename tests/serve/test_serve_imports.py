"""Start-up discipline for the server's modules: the web stack loads only with the app."""

from __future__ import annotations

from test_imports import _loaded_after

WEB = {"fastapi", "uvicorn", "starlette", "aiohttp", "openrlhf"}


def test_import_specc_and_check_load_no_web_stack() -> None:
    code = (
        "import specc\n"
        "from specc.cli import build_parser, main\n"
        "import contextlib, io\n"
        "build_parser()\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert main(['check', 'policies/safety.rbr']) == 0\n"
    )
    loaded = _loaded_after(code)
    assert "specc" in loaded and not loaded & WEB, loaded & WEB


def test_the_openrlhf_reward_file_needs_no_web_server() -> None:
    # OpenRLHF's vLLM workers load the reward file: fastapi/uvicorn need not be there.
    loaded = _loaded_after(
        "import specc.integrations.openrlhf, specc.serve.engine, specc.serve.batcher"
    )
    assert not loaded & {"fastapi", "uvicorn", "starlette"}
    assert "fastapi" in _loaded_after("import specc.serve.app")  # the probe sees imports

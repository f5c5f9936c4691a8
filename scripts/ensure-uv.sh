# Sourced by scripts/test and scripts/demo: make `uv` available as "${UV[@]}".
# A fresh machine has Python and pip only; uv then comes from PyPI, which is all uv needs.

export UV_PYTHON_DOWNLOADS=never  # use the machine's Python 3.11, never fetch one
export UV_SYSTEM_CERTS=1  # the machine's CA certificates, as pip uses them (also in pyproject.toml)

if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    echo "==> Installing uv" >&2
    pip_install=(python3 -m pip install --quiet --disable-pip-version-check)
    [[ $(id -u) -eq 0 ]] || pip_install+=(--user)
    # Debian's own python3 refuses pip installs (PEP 668) unless told it may.
    "${pip_install[@]}" 'uv>=0.5,<1' 2>/dev/null ||
        "${pip_install[@]}" --break-system-packages 'uv>=0.5,<1'
    UV=(python3 -m uv)  # works even when pip's script directory is not on PATH
fi

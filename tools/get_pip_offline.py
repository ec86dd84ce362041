"""Offline stand-in for pypa's get-pip.py, for ansible-test's sanity virtual environments.

ansible-test bootstraps pip into each sanity venv with a get-pip.py it downloads from a host this
machine cannot reach. `make sanity` puts this file in ansible-test's cache under that name. It
does the same job with the standard library's ensurepip and then installs, from the package
index, the pip version and packages ansible-test asked for.
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    requested = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *requested])


if __name__ == "__main__":
    main()

"""``python -m examples.frontend``: start the example, print where to go, wait for Ctrl-C.

Ports are ``--port-base`` and the four after it (default 8610: page 8610, IdP 8611, authsvc
8612, gateway 8613, data API 8614), or any free ones with ``--free-ports``. State lives in a
fresh temporary directory that is removed at exit (``--keep`` keeps it, with the logs).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType

from examples.frontend.processes import StartFailed
from examples.frontend.stack import USERS, Ports, SetupFailed, running_example


def main() -> int:
    parser = argparse.ArgumentParser(prog="examples/frontend/run", description=__doc__)
    parser.add_argument("--port-base", type=int, default=8610)
    parser.add_argument("--free-ports", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    ports = Ports.free() if args.free_ports else Ports.consecutive(args.port_base)
    workdir = Path(tempfile.mkdtemp(prefix="authsvc-frontend-"))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    failed = False
    try:
        with running_example(workdir, ports) as example:
            admin_key = workdir / "admin.key"
            admin_key.touch(mode=0o600)
            admin_key.write_text(example.tenant.admin_key)
            users = ", ".join(f"{name} (org_id {org})" for name, org in USERS.items())
            print(
                f"""
  page         {example.page_url}        <- open this
  IdP          {example.idp_url}   users: {users}; any password
  authsvc      {example.authsvc_url}   tenant {example.tenant.slug}, issuer {example.issuer_id}
  gateway      {example.orders_url}
  data API     {example.data_api_url}  (reachable only through the gateway in production)

  revoke alice's data tokens:
    curl -s -X POST {example.authsvc_url}/v1/tokens/revoke \\
      -H "Authorization: Bearer $(cat {admin_key})" \\
      -H 'Content-Type: application/json' -d '{{"sub": "alice"}}'

  logs in {workdir}; Ctrl-C stops everything.
""",
                flush=True,
            )
            stop.wait()
    except (SetupFailed, StartFailed) as error:
        failed = True
        print(f"examples/frontend: {error}")
    finally:
        if args.keep or failed:
            print(f"logs and state kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

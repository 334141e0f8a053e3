"""A 2xx from a branch the proxy gave up, once the caller has its answer.

A branch is abandoned when its hop timeout (Timer B cut short) or its step's
ring timeout expired: the proxy moved on to the next destination (the next PSAP of an
emergency call, the next step of a forward). RFC 3261 §16.7 step 10 has a proxy
forward every 2xx, so that the caller can pick among forked answers; but a branch the
proxy itself abandoned is not a fork the caller asked for. Once the caller already
has a final answer (another branch's 2xx, or the failure sent upstream), relaying this
one would hand the caller a second dialog with a PSAP it is not talking to, while the
call is being served by the next one. So the proxy ends that dialog itself, as the
UAC of the branch: it ACKs the 2xx (§13.2.2.4; every retransmission, as the PSAP
resends until ACKed) and sends one BYE (§15.1.1). When nothing has answered the caller
yet, the late 2xx is relayed as usual: a reachable PSAP is the best outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import Uri
from sipline.runtime.endpoint import Endpoint
from sipline.transport import Target

__all__ = ["end_abandoned_answer"]

log = logging.getLogger("sipline.proxy")

# RFC 3326: why the BYE comes (the caller went on to another destination).
_REASON = 'SIP;cause=200;text="Call completed elsewhere"'


def end_abandoned_answer(
    endpoint: Endpoint,
    request: Request,
    response: Response,
    hop: Target,
    is_me: Callable[[Uri], bool],
    *,
    send_bye: bool,
) -> None:
    """ACK the 2xx `response` to our branch `request` (sent to `hop`) and, with
    `send_bye`, hang the dialog up. Our own Record-Route entries are left out of the
    route set: here we are the UAC."""
    try:
        dialog = Dialog.as_uac(request, response)
        dialog.route_set = [r for r in dialog.route_set if not is_me(r.uri)]
        ack = dialog.create_ack(response.cseq.seq)
        ack.headers.add("Via", endpoint.via_value(hop, endpoint.new_branch()), first=True)
        endpoint.send_stateless(ack, hop)
        if send_bye:
            bye = dialog.create_request("BYE", extra=[("Reason", _REASON)])
            endpoint.send_request(bye, hop)
    except (LocalProtocolError, RemoteProtocolError) as exc:
        log.info("late 2xx on an abandoned branch not hung up: %s", exc)
        return
    if send_bye:
        log.info("hung up a late 2xx from %s:%d (branch abandoned)", hop.host, hop.port)

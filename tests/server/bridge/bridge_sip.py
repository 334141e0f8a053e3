"""The SIP side of the media bridge's tests, on `sipua.TestUA`: a REGISTER with or
without the `+sip.ice` feature tag a browser phone's Contact carries, alice's INVITE
with an offer, and a callee answering every INVITE with an SDP body (a fixed one, or
what a browser's peer connection answers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service_calls import DOMAIN
from sipua import Dialog, Exchange, InviteBehaviour, TestUA

from sipline.core.message import Request
from sipline.runtime.endpoint import ServerTransaction

SdpAnswer = bytes | Callable[[bytes], Awaitable[bytes]]


async def register(ua: TestUA, user: str, *, webrtc: bool) -> None:
    """Register `user` at `ua`'s address; `webrtc`: as a browser phone does."""
    tag = ";+sip.ice" if webrtc else ""
    request = ua.build(
        "REGISTER",
        f"sip:{DOMAIN}",
        from_=f"{user}@{DOMAIN}",
        extra=[("Contact", f"<{ua.contact(user)}>{tag}"), ("Expires", "600")],
    )
    assert (await ua.send_authenticated(request, user, f"{user}-pw")).final.status == 200


def invite_request(ua: TestUA, body: bytes, callee: str = "bob") -> Request:
    """alice's INVITE to `callee`, offering `body`."""
    return ua.build(
        "INVITE",
        f"sip:{callee}@{DOMAIN}",
        from_=f"alice@{DOMAIN}",
        to=f"{callee}@{DOMAIN}",
        contact=ua.contact("alice"),
        body=body,
    )


def acked(ua: TestUA, exchange: Exchange) -> Dialog:
    """The dialog an INVITE's 2xx set up, its ACK sent."""
    dialog = Dialog(ua, exchange.request, exchange.final)
    dialog.ack()
    return dialog


def answering(
    answer: SdpAnswer,
    user: str = "bob",
    *,
    offers: list[bytes] | None = None,
    copy_record_route: bool = True,
) -> InviteBehaviour:
    """Answer each INVITE 200 as `user` with `answer` (or what it makes of the offer),
    keeping each offer in `offers`."""

    async def behave(ua: TestUA, st: ServerTransaction) -> None:
        if offers is not None:
            offers.append(st.request.body)
        body = answer if isinstance(answer, bytes) else await answer(st.request.body)
        extra = [("Contact", f"<{ua.contact(user)}>")]
        st.respond(
            200,
            extra=extra,
            body=body,
            content_type="application/sdp",
            copy_record_route=copy_record_route,
        )

    return behave

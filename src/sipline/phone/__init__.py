"""User agents with RTP media: a Python asyncio API for phones and voice bots.

A `UserAgent` is one SIP identity on one endpoint, with as many calls at once as you
like. It registers with a server (digest authentication, refreshed before expiry,
removed on close, CRLF keep-alives over UDP), places and receives calls with G.711
(or Opus) audio over RTP, and handles what calls do: early media, redirects, CANCEL,
hold and resume, RFC 4028 session timers, DTMF, blind transfer::

    import asyncio
    from sipline.phone import UserAgent

    async def main() -> None:
        async with UserAgent("alice@example.com", password="secret",
                             server="sip.example.com:5060") as ua:
            call = await ua.call("sip:bob@example.com", record="reply.wav")
            await call.answered                  # raises CallFailed (486, 487, ...)
            await call.play("hello.wav")         # until the file has been sent
            await call.send_dtmf("123#")
            await call.hold()
            await call.resume()
            print(call.stats().summary())        # packets, loss, jitter, MOS
            await call.hangup()

    asyncio.run(main())

Receiving calls: pass `on_call=handler` (called with each incoming `Call`, which it
may `answer()` or `reject()`), or `auto_answer=True`, or take them with
`await ua.next_call()`::

    async with UserAgent("bob@example.com", password="pw", server="sip.example.com") as ua:
        call = await ua.next_call()
        await call.answer(play="greeting.wav", record="message.wav")
        await call.ended

Events: `async for event in call.events()` yields `CallProgressed` (100, 180, 183 and
whether early media started), `CallAnswered`, `CallHeld` / `CallResumed` (and by whom),
`DtmfReceived`, `SessionRefreshed`, `TransferRequested`, `TransferProgressed`,
`CallTransferred` and finally `CallEnded` (with the reason and who ended it);
`call.add_listener(callback)` gets the same. Audio to play: a WAV path (resampled),
int16 numpy samples, an `AudioSource` (such as `ToneSource`), a callable producing
frames, or an async iterator of PCM chunks. Audio received: a WAV path, a sink, or a
callable.

NAT: the agent advertises the address it uses to reach the server, learns its public
address from the registrar's Via (RFC 3581 received/rport) and registers that, keeps
the mapping open with keep-alives, and sends RTP where the peer's RTP comes from
(symmetric RTP, RFC 4961). `media_mapper` lets a STUN client or relay say where our
media port is reachable. Everything else is in `UserAgentConfig` and `MediaOptions`.

Messages and presence::

    await ua.send_message("bob@example.com", "hello")   # 200, or 202: stored for later
    message = await ua.next_message()                    # or on_message=handler
    print(message.sender, message.text)
    await ua.publish("away", note="in a meeting")       # RFC 3903, refreshed until close
    watch = await ua.watch("bob@example.com")            # RFC 6665 presence subscription
    async for update in watch.updates():
        print(update.describe())                         # "online", "away (lunch)", ...

Layering: `sipline.phone` imports the runtime and the layers below it; the CLI's
user-agent commands and the server's media services (the media host is a
`UserAgent`) import it.
"""

from sipline.phone.agent import CallHandler, MessageHandler, TransferPolicy, UserAgent
from sipline.phone.call import Call
from sipline.phone.config import UserAgentConfig
from sipline.phone.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallFailed,
    CallHeld,
    CallProgressed,
    CallResumed,
    CallState,
    CallTransferred,
    DtmfReceived,
    EndedBy,
    RegistrationError,
    SessionRefreshed,
    TransferProgressed,
    TransferRequested,
    UserAgentError,
)
from sipline.phone.im import IncomingMessage, MessageFailed
from sipline.phone.media import AddressMapper, MediaOptions
from sipline.phone.session_timer import SessionTimerPolicy
from sipline.phone.watch import PresencePublication, Watch, WatchUpdate

__all__ = [
    "AddressMapper",
    "Call",
    "CallAnswered",
    "CallEnded",
    "CallEvent",
    "CallFailed",
    "CallHandler",
    "CallHeld",
    "CallProgressed",
    "CallResumed",
    "CallState",
    "CallTransferred",
    "DtmfReceived",
    "EndedBy",
    "IncomingMessage",
    "MediaOptions",
    "MessageFailed",
    "MessageHandler",
    "PresencePublication",
    "RegistrationError",
    "SessionRefreshed",
    "SessionTimerPolicy",
    "TransferPolicy",
    "TransferProgressed",
    "TransferRequested",
    "UserAgent",
    "UserAgentConfig",
    "UserAgentError",
    "Watch",
    "WatchUpdate",
]

"""The compact binding cache: what goes in comes out, field for field and type for
type, and the cache answers as a dict of `Binding` tuples per AOR and per Contact
(the form it replaced) would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sipline.storage import Binding
from sipline.storage.cache import BindingCache, pack, unpack

text = st.text(max_size=12)  # separators and non-ASCII included
times = st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, 1e300, 1796199131.0571046])

bindings = st.builds(
    Binding,
    aor=st.sampled_from(["alice@example.com", "bob@example.com", "carol@example.com"]),
    contact=st.sampled_from(["sip:a@h1", "sip:a@h2", "sip:b@h1"]) | text,
    expires_at=times,
    call_id=text,
    cseq=st.integers(min_value=0, max_value=2**31 - 1),
    q=st.none() | st.floats(min_value=0, max_value=1),
    path=st.lists(text, max_size=3).map(tuple),
    instance=st.none() | text,
    reg_id=st.none() | st.integers(min_value=0, max_value=2**31 - 1),
    received=st.none() | text,
    user_agent=st.none() | text,
    params=text,
    updated_at=times,
    flow=st.none() | text,
)


def same(a: Binding, b: Binding) -> bool:
    """Equal, and every field of the same type (5 == 5.0, but not the same thing)."""
    return a == b and all(type(x) is type(y) for x, y in zip(_fields(a), _fields(b), strict=True))


def _fields(b: Binding) -> tuple[object, ...]:
    return tuple(getattr(b, name) for name in Binding.__slots__)


@given(bindings)
def test_pack_round_trips_every_field(b: Binding) -> None:
    assert same(unpack(b.aor, pack(b)), b)


def test_numbers_of_another_type_are_kept_as_they_are() -> None:
    b = Binding("alice@example.com", "sip:a@h", 100, "c", 1)  # an int expires_at
    assert pack(b) is b
    packed = pack(Binding("alice@example.com", "sip:a@h", 100.0, "c", 1))
    assert isinstance(packed, str)


class Model:
    """The cache as it was: tuples of Bindings per AOR and per Contact."""

    def __init__(self) -> None:
        self.by_aor: dict[str, tuple[Binding, ...]] = {}
        self.by_contact: dict[str, tuple[Binding, ...]] = {}

    @staticmethod
    def _upsert(entries: tuple[Binding, ...], b: Binding, same_key: bool) -> tuple[Binding, ...]:
        for i, x in enumerate(entries):
            if (x.contact == b.contact) if same_key else (x.aor == b.aor):
                return (*entries[:i], b, *entries[i + 1 :])
        return (*entries, b)

    def put(self, b: Binding) -> None:
        self.by_aor[b.aor] = self._upsert(self.by_aor.get(b.aor, ()), b, True)
        self.by_contact[b.contact] = self._upsert(self.by_contact.get(b.contact, ()), b, False)

    def drop(self, aor: str, contact: str) -> None:
        mine = tuple(x for x in self.by_aor.get(aor, ()) if x.contact != contact)
        if mine:
            self.by_aor[aor] = mine
        else:
            self.by_aor.pop(aor, None)
        same = tuple(x for x in self.by_contact.get(contact, ()) if x.aor != aor)
        if same:
            self.by_contact[contact] = same
        else:
            self.by_contact.pop(contact, None)

    def for_contact(self, contact: str, now: float) -> Binding | None:
        return next((b for b in self.by_contact.get(contact, ()) if b.expires_at > now), None)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), bindings),
        st.tuples(
            st.just("drop"),
            st.sampled_from(["alice@example.com", "bob@example.com"]),
            st.sampled_from(["sip:a@h1", "sip:a@h2", "sip:b@h1"]),
        ),
    ),
    max_size=30,
)


@given(operations, times)
def test_the_cache_answers_as_tuples_of_bindings_did(
    ops: list[tuple[object, ...]], now: float
) -> None:
    cache, model = BindingCache(), Model()
    for op in ops:
        if op[0] == "put":
            b = op[1]
            assert isinstance(b, Binding)
            cache.put(b)
            model.put(b)
        else:
            aor, contact = op[1], op[2]
            assert isinstance(aor, str) and isinstance(contact, str)
            cache.drop(aor, contact)
            model.drop(aor, contact)
    assert cache.aors() == list(model.by_aor)
    assert list(cache) == [b for entries in model.by_aor.values() for b in entries]
    for aor in ("alice@example.com", "bob@example.com", "carol@example.com"):
        assert cache.bindings(aor) == list(model.by_aor.get(aor, ()))
        assert cache.bindings(aor, now=now) == [
            b for b in model.by_aor.get(aor, ()) if b.expires_at > now
        ]
    for contact in {*model.by_contact, "sip:a@h1", "sip:nobody@h"}:
        assert cache.for_contact(contact, now=now) == model.for_contact(contact, now)
    for aor in cache.aors():
        cache.replace(aor, [])
    assert len(cache) == 0 and list(cache) == []

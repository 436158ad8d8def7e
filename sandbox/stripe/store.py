"""Object storage: ids, creation order, list pages (``limit``/``starting_after``/``ending_before``) and
``expand``."""

from __future__ import annotations

import contextlib
import copy
import itertools
import random
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sandbox.stripe.errors import StripeError, invalid, no_such
from sandbox.stripe.params import Params, get_array, get_hash, get_int, get_str

Obj = dict[str, Any]
Expander = Callable[[Obj], Any]
_ALPHABET = string.ascii_letters + string.digits
MAX_EXPAND_DEPTH = 4

# object type -> the noun Stripe uses in "No such ..." errors
NOUNS = {
    "checkout.session": "checkout.session",
    "customer": "customer",
    "product": "product",
    "price": "price",
    "payment_intent": "payment_intent",
    "charge": "charge",
    "refund": "refund",
    "subscription": "subscription",
    "subscription_item": "subscription_item",
    "invoice": "invoice",
    "event": "event",
    "webhook_endpoint": "webhook_endpoint",
}


class Store:
    """Every object the emulator holds, by id, with a creation sequence for stable list order."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.objects: dict[str, Obj] = {}
        self._seq: dict[str, int] = {}
        self._counter = itertools.count(1)
        self.expanders: dict[tuple[str, str], Expander] = {}
        self._journal: list[str] | None = None

    def new_id(self, prefix: str, test_marker: bool = False) -> str:
        body = "".join(self.rng.choice(_ALPHABET) for _ in range(24))
        if test_marker:
            return f"{prefix}_test_{body}"
        return f"{prefix}_1{body[:23]}"

    def add(self, obj: Obj) -> Obj:
        self.objects[obj["id"]] = obj
        self._seq[obj["id"]] = next(self._counter)
        if self._journal is not None:
            self._journal.append(obj["id"])
        return obj

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """Objects added inside the block are removed again if it raises."""
        outer, self._journal = self._journal, []
        try:
            yield
        except BaseException:
            for object_id in self._journal:
                self.remove(object_id)
            raise
        finally:
            added = self._journal
            self._journal = outer
            if outer is not None:
                outer.extend(added)

    def remove(self, object_id: str) -> None:
        self.objects.pop(object_id, None)
        self._seq.pop(object_id, None)

    def find(self, object_id: str | None, object_type: str | None = None) -> Obj | None:
        if not object_id:
            return None
        obj = self.objects.get(object_id)
        if obj is None or (object_type is not None and obj.get("object") != object_type):
            return None
        return obj

    def get(self, object_id: str | None, object_type: str, param: str = "id") -> Obj:
        obj = self.find(object_id, object_type)
        if obj is None:
            raise no_such(NOUNS.get(object_type, object_type), str(object_id or ""), param)
        return obj

    def all(self, object_type: str) -> list[Obj]:
        """Objects of a type, newest first."""
        items = [o for o in self.objects.values() if o.get("object") == object_type]
        items.sort(key=lambda o: self._seq[o["id"]], reverse=True)
        return items

    def sequence(self, object_id: str) -> int:
        return self._seq.get(object_id, 0)

    # -- lists -----------------------------------------------------------------------------------------------
    def page(self, items: list[Obj], params: Mapping[str, Any], url: str) -> Obj:
        """One page of ``items`` (already newest first), as Stripe pages lists."""
        limit = get_int(params, "limit")
        if limit is None:
            limit = 10
        if not 1 <= limit <= 100:
            raise invalid("This value must be between 1 and 100.", param="limit")
        after = get_str(params, "starting_after")
        before = get_str(params, "ending_before")
        if after and before:
            raise invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        ids = [o["id"] for o in items]
        if after:
            if after not in ids:
                raise self._cursor_error(after, "starting_after")
            start = ids.index(after) + 1
            chosen = items[start : start + limit]
            has_more = start + limit < len(items)
        elif before:
            if before not in ids:
                raise self._cursor_error(before, "ending_before")
            end = ids.index(before)
            begin = max(0, end - limit)
            chosen = items[begin:end]
            has_more = begin > 0
        else:
            chosen = items[:limit]
            has_more = len(items) > limit
        return {"object": "list", "data": chosen, "has_more": has_more, "url": url}

    def _cursor_error(self, object_id: str, param: str) -> StripeError:
        obj = self.objects.get(object_id)
        noun = NOUNS.get(str(obj.get("object")), "object") if obj else "object"
        return no_such(noun, object_id, param)

    # -- expand ----------------------------------------------------------------------------------------------
    def render(self, obj: Obj, params: Mapping[str, Any]) -> Obj:
        """A deep copy of ``obj`` with the ``expand`` parameter applied."""
        result = copy.deepcopy(obj)
        for path in get_array(params, "expand"):
            if not isinstance(path, str) or not path:
                raise invalid("Invalid array", param="expand")
            parts = path.split(".")
            if len(parts) > MAX_EXPAND_DEPTH:
                raise invalid(
                    f"You cannot expand more than {MAX_EXPAND_DEPTH} levels of a property. Property: {path}",
                    param="expand",
                )
            self._expand(result, parts, path)
        return result

    def _expand(self, value: Any, parts: list[str], path: str) -> None:
        if not parts or not isinstance(value, dict):
            return
        head, rest = parts[0], parts[1:]
        if value.get("object") == "list" and head == "data":
            for item in value.get("data", []):
                self._expand(item, rest, path)
            return
        expander = self.expanders.get((str(value.get("object")), head))
        field = value.get(head)
        if expander is not None and not isinstance(field, dict):
            value[head] = expander(value)
        elif isinstance(field, str):
            target = self.objects.get(field)
            if target is None:
                raise invalid(f"This property cannot be expanded ({path}).", param="expand")
            value[head] = copy.deepcopy(target)
        elif field is None and head in value:
            return
        elif not isinstance(field, dict):
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
        self._expand(value[head], rest, path)


def created_filter(params: Params, items: Iterable[Obj], name: str = "created") -> list[Obj]:
    """Apply ``created=<ts>`` or ``created[gt|gte|lt|lte]=<ts>``."""
    result = list(items)
    raw = params.get(name)
    if raw is None or raw == "":
        return result
    if isinstance(raw, str):
        exact = get_int(params, name)
        return [o for o in result if o.get(name) == exact]
    bounds = get_hash(params, name)
    for op in bounds:
        if op not in ("gt", "gte", "lt", "lte"):
            raise invalid(f"Received unknown parameter: {name}[{op}]", param=f"{name}[{op}]")
        limit = get_int(bounds, op, prefix=name)
        assert limit is not None
        checks = {
            "gt": lambda v, lim=limit: v > lim,
            "gte": lambda v, lim=limit: v >= lim,
            "lt": lambda v, lim=limit: v < lim,
            "lte": lambda v, lim=limit: v <= lim,
        }
        result = [o for o in result if checks[op](int(o.get(name) or 0))]
    return result

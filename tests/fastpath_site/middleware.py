"""A middleware that marks each response it sees and counts its calls: which route answered."""

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

#: Calls in this process (the in-process tests read it).
CALLS = 0


@sync_and_async_middleware
def mark_response(
    get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
) -> Callable[[HttpRequest], object]:
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            global CALLS
            CALLS += 1
            response = await get_response(request)
            response["X-Test-Middleware"] = "ran"
            return response

        return middleware

    def sync_middleware(request: HttpRequest) -> HttpResponseBase:
        global CALLS
        CALLS += 1
        response = get_response(request)
        assert isinstance(response, HttpResponseBase)
        response["X-Test-Middleware"] = "ran"
        return response

    return sync_middleware

"""Routes of the users service (SEED.md 5.1): parse, authorise, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tienda.platform.auth import Admin, CurrentUser, OptionalUser, SelfOrAdmin
from tienda.platform.db import UnitOfWork
from tienda.platform.deps import unit_of_work
from tienda.platform.errors import AppError, Unauthorized, error_responses
from tienda.platform.pagination import Page, PageQuery
from tienda.platform.schemas import Message
from tienda.users.errors import RecordedError
from tienda.users.schemas import (
    AddressCreate,
    AddressRead,
    AddressUpdate,
    ForgotPasswordRequest,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    ResetPasswordRequest,
    TokenPair,
    UserRead,
    UserUpdate,
)
from tienda.users.service import IssuedTokens, UserService
from tienda.users.wiring import build_user_service

router = APIRouter(prefix="/users", tags=["users"])


async def _service(request: Request) -> UserService:  # async: no thread-pool hop per request
    service: UserService | None = getattr(request.app.state, "users_service", None)
    if service is None:
        service = request.app.state.users_service = build_user_service(request.app.state.platform)
    return service


Service = Annotated[UserService, Depends(_service)]
Uow = Annotated[UnitOfWork, Depends(unit_of_work("users"))]
ReadUow = Annotated[UnitOfWork, Depends(unit_of_work("users", readonly=True))]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _tokens(issued: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
        user_id=issued.user_id,
    )


async def _commit_recorded(uow: UnitOfWork, exc: AppError) -> None:
    """Bookkeeping of some failures (a revoked token family, a counted try) must persist."""
    if isinstance(exc, RecordedError):
        await uow.commit()


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Register a user",
    response_model=RegisterResponse,
    responses=error_responses(400, 409),
)
async def register(body: RegisterRequest, service: Service, uow: Uow) -> RegisterResponse:
    user = await service.register(
        uow, email=body.email, password=body.password, full_name=body.full_name, phone=body.phone
    )
    await uow.commit()
    return RegisterResponse(user_id=user.user_id, message="User registered")


@router.post(
    "/login",
    summary="Log in with e-mail and password",
    description="Returns a short-lived access token and a refresh token. Failures are throttled per "
    "account and per client IP; past the limit the answer is 429 with `Retry-After`.",
    response_model=TokenPair,
    responses=error_responses(400, 401, 403, 429),
)
async def login(body: LoginRequest, request: Request, service: Service, uow: Uow) -> TokenPair:
    issued = await service.login(uow, email=body.email, password=body.password, client_ip=_client_ip(request))
    await uow.commit()
    return _tokens(issued)


@router.post(
    "/refresh-token",
    summary="Exchange a refresh token for new tokens",
    description="Refresh tokens rotate: each works once. Presenting one that was already used "
    "revokes every token descended from the same login.",
    response_model=TokenPair,
    responses=error_responses(400, 401),
)
async def refresh_token(body: RefreshRequest, service: Service, uow: Uow) -> TokenPair:
    try:
        issued = await service.refresh(uow, refresh_token=body.refresh_token)
    except AppError as exc:
        await _commit_recorded(uow, exc)
        raise
    await uow.commit()
    return _tokens(issued)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out",
    description="Revokes the access token used for this call and the given refresh token's family "
    "(or, without one, every session of the user).",
    responses=error_responses(400, 401),
)
async def logout(principal: CurrentUser, service: Service, uow: Uow, body: LogoutRequest | None = None) -> Response:
    await service.logout(uow, principal=principal, refresh_token=body.refresh_token if body else None)
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    summary="E-mail a 6-digit password reset code",
    description="The code is valid for 10 minutes and 5 tries. The answer is the same whether or "
    "not the e-mail has an account.",
    response_model=Message,
    responses=error_responses(400, 429),
)
async def forgot_password(body: ForgotPasswordRequest, request: Request, service: Service, uow: Uow) -> Message:
    await service.forgot_password(uow, email=body.email, client_ip=_client_ip(request))
    await uow.commit()
    return Message(message="If an account exists for this e-mail, a reset code has been sent")


@router.post(
    "/reset-password",
    summary="Change or reset a password",
    description="`{userId, oldPassword, newPassword}` with a bearer token (self; an admin may reset "
    "another user's password without `oldPassword`), or `{email, otp, newPassword}` with the code "
    "from forgot-password. Every session of the user ends.",
    response_model=Message,
    responses=error_responses(400, 401, 404, 429),
)
async def reset_password(body: ResetPasswordRequest, principal: OptionalUser, service: Service, uow: Uow) -> Message:
    try:
        if body.user_id is not None:
            if principal is None:
                raise Unauthorized("Sign in to change a password with userId and oldPassword")
            await service.change_password(
                uow,
                actor=principal,
                user_id=body.user_id,
                old_password=body.old_password,
                new_password=body.new_password,
            )
        else:
            assert body.email is not None
            assert body.otp is not None
            await service.reset_with_code(uow, email=body.email, code=body.otp, new_password=body.new_password)
    except AppError as exc:
        await _commit_recorded(uow, exc)
        raise
    await uow.commit()
    return Message(message="Password updated")


@router.get("/me", summary="The signed-in user's profile", response_model=UserRead, responses=error_responses(401))
async def me(principal: CurrentUser, service: Service, uow: ReadUow) -> UserRead:
    return UserRead.model_validate(await service.get(uow, user_id=principal.subject))


@router.get(
    "",
    summary="List users (admin)",
    response_model=Page[UserRead],
    responses=error_responses(400, 401, 403),
)
async def list_users(
    _admin: Admin,
    service: Service,
    uow: ReadUow,
    page: PageQuery,
    email: Annotated[str | None, Query(max_length=255, description="Part of the e-mail.")] = None,
) -> Page[UserRead]:
    users, total = await service.list_users(uow, email=email, offset=page.offset, limit=page.size)
    return Page(items=[UserRead.model_validate(u) for u in users], page=page.page, size=page.size, total=total)


@router.get(
    "/{userId}",
    summary="Get a user's profile",
    description="A user sees only their own profile; anyone else's answers 404. Admins see all.",
    response_model=UserRead,
    responses=error_responses(401, 404),
)
async def get_user(userId: str, _principal: SelfOrAdmin, service: Service, uow: ReadUow) -> UserRead:
    return UserRead.model_validate(await service.get(uow, user_id=userId))


@router.patch(
    "/{userId}",
    summary="Update a profile",
    description="Only the fields sent change. `role` and `isActive` are for admins.",
    response_model=UserRead,
    responses=error_responses(400, 401, 403, 404),
)
async def update_user(userId: str, body: UserUpdate, principal: SelfOrAdmin, service: Service, uow: Uow) -> UserRead:
    user = await service.update_profile(
        uow, actor=principal, user_id=userId, changes=body.model_dump(exclude_unset=True)
    )
    await uow.commit()
    return UserRead.model_validate(user)


@router.get(
    "/{userId}/addresses",
    summary="List a user's addresses",
    response_model=Page[AddressRead],
    responses=error_responses(400, 401, 404),
)
async def list_addresses(
    userId: str, _p: SelfOrAdmin, service: Service, uow: ReadUow, page: PageQuery
) -> Page[AddressRead]:
    rows, total = await service.addresses(uow, user_id=userId, offset=page.offset, limit=page.size)
    return Page(items=[AddressRead.model_validate(a) for a in rows], page=page.page, size=page.size, total=total)


@router.post(
    "/{userId}/addresses",
    status_code=status.HTTP_201_CREATED,
    summary="Add an address",
    description="The first address becomes the default; `isDefault: true` moves the default here.",
    response_model=AddressRead,
    responses=error_responses(400, 401, 404, 409),
)
async def add_address(userId: str, body: AddressCreate, _p: SelfOrAdmin, service: Service, uow: Uow) -> AddressRead:
    address = await service.add_address(uow, user_id=userId, fields=body.model_dump())
    await uow.commit()
    return AddressRead.model_validate(address)


@router.put(
    "/{userId}/addresses/{addressId}",
    summary="Edit an address",
    description="Only the fields sent change.",
    response_model=AddressRead,
    responses=error_responses(400, 401, 404, 409),
)
async def update_address(
    userId: str,
    addressId: str,
    body: AddressUpdate,
    _p: SelfOrAdmin,
    service: Service,
    uow: Uow,
) -> AddressRead:
    address = await service.update_address(
        uow, user_id=userId, address_id=addressId, changes=body.model_dump(exclude_unset=True)
    )
    await uow.commit()
    return AddressRead.model_validate(address)


@router.delete(
    "/{userId}/addresses/{addressId}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an address",
    description="Deleting the default makes the newest remaining address the default.",
    responses=error_responses(401, 404),
)
async def delete_address(userId: str, addressId: str, _p: SelfOrAdmin, service: Service, uow: Uow) -> Response:
    await service.delete_address(uow, user_id=userId, address_id=addressId)
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)

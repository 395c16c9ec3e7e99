//! The TPM conversations of a seal and an unseal, over any [`Transport`], with every transient
//! handle flushed on every path ([`Transient`] flushes on drop).

use super::PcrSelection;
use super::commands::{self, Request, SessionKind};
use super::error::TpmError;
use super::transport::Transport;
use super::wire::{self, Auth, Response};
use std::cell::{Cell, RefCell};
use zeroize::Zeroizing;

pub use commands::Sealed;

/// A connection to one TPM.
pub struct Client {
    transport: RefCell<Box<dyn Transport>>,
    /// Set once a command could not be sent or read: later ones (the flushes) are not tried.
    broken: Cell<bool>,
}

/// A transient object or session, flushed when dropped unless the TPM already ended it.
pub struct Transient<'c> {
    client: &'c Client,
    handle: u32,
    live: bool,
}

impl Drop for Transient<'_> {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        let flushed =
            commands::flush_context(self.handle).and_then(|request| self.client.call(request, commands::nothing));
        if let Err(e) = flushed {
            log::warn!("secrets: the TPM handle {:#010x} could not be flushed: {e}", self.handle);
        }
    }
}

impl Client {
    /// A client sending over `transport`.
    pub fn new(transport: Box<dyn Transport>) -> Self {
        Client { transport: RefCell::new(transport), broken: Cell::new(false) }
    }

    fn call<T>(
        &self,
        request: Request,
        parse: impl FnOnce(Response<'_>) -> Result<T, TpmError>,
    ) -> Result<T, TpmError> {
        let bytes = self.exchange(&request)?;
        parse(wire::response(request.name, &bytes, request.handles, request.sessions)?)
    }

    fn exchange(&self, request: &Request) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        if self.broken.get() {
            return Err(TpmError::Io { command: request.name, why: "the TPM connection failed earlier".into() });
        }
        let sent = self.transport.borrow_mut().transact(request.name, request.bytes.bytes());
        sent.inspect_err(|_| self.broken.set(true))
    }

    fn transient(&self, handle: u32) -> Transient<'_> {
        Transient { client: self, handle, live: true }
    }

    /// Sends a command that makes a transient object or session: the handle the TPM answers with
    /// is held (and so flushed if the rest of the answer is wrong) before `parse` checks the rest.
    fn call_transient(
        &self,
        request: Request,
        parse: impl FnOnce(Response<'_>) -> Result<u32, TpmError>,
    ) -> Result<Transient<'_>, TpmError> {
        let bytes = self.exchange(&request)?;
        let response = wire::response(request.name, &bytes, request.handles, request.sessions)?;
        let is_transient = |handle: &&u32| matches!(**handle >> 24, 0x80 | 0x02 | 0x03);
        let mut held: Vec<Transient<'_>> =
            response.handles.iter().filter(is_transient).map(|handle| self.transient(*handle)).collect();
        let handle = parse(response)?;
        match held.pop() {
            Some(transient) if transient.handle == handle && held.is_empty() => Ok(transient),
            _ => Err(TpmError::Malformed(format!("{}: the handle answered is not the one made", request.name))),
        }
    }

    /// The storage primary key (the same one for the same TPM every time).
    pub fn primary(&self) -> Result<Transient<'_>, TpmError> {
        self.call_transient(commands::create_primary()?, commands::primary)
    }

    /// The digest of a PolicyPCR of `pcrs` at their current values, from a trial session.
    pub fn policy_digest(&self, pcrs: &PcrSelection) -> Result<Vec<u8>, TpmError> {
        let session = self.session(SessionKind::Trial)?;
        self.call(commands::policy_pcr(session.handle, pcrs)?, commands::nothing)?;
        self.call(commands::policy_get_digest(session.handle)?, commands::policy_digest)
    }

    /// `data` sealed under `parent`, bound to `policy` when given.
    pub fn create(&self, parent: &Transient<'_>, data: &[u8], policy: Option<&[u8]>) -> Result<Sealed, TpmError> {
        self.call(commands::create(parent.handle, data, policy)?, commands::created)
    }

    /// `sealed` loaded under `parent`.
    pub fn load(&self, parent: &Transient<'_>, sealed: &Sealed) -> Result<Transient<'_>, TpmError> {
        self.call_transient(commands::load(parent.handle, sealed)?, commands::loaded)
    }

    /// The data `item` holds, through a policy session of `pcrs` when it is bound to them.
    pub fn unseal(&self, item: &Transient<'_>, pcrs: Option<&PcrSelection>) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let Some(pcrs) = pcrs else {
            return self.call(commands::unseal(item.handle, Auth::Password)?, commands::unsealed);
        };
        let mut session = self.session(SessionKind::Policy)?;
        self.call(commands::policy_pcr(session.handle, pcrs)?, commands::nothing)?;
        let data = self.call(commands::unseal(item.handle, Auth::Policy(session.handle))?, commands::unsealed)?;
        // continueSession was clear: the TPM ended the session with the command's success.
        session.live = false;
        Ok(data)
    }

    fn session(&self, kind: SessionKind) -> Result<Transient<'_>, TpmError> {
        let mut nonce = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(|_| TpmError::NoRandomness)?;
        self.call_transient(commands::start_auth_session(kind, &nonce)?, commands::session_handle)
    }
}

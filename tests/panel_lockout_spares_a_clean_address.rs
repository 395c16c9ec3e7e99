//! Wrong passwords lock out the address that sent them, not the admin: five from 127.0.0.2 do
//! not stop the right password from 127.0.0.1.

mod common;

use common::daemon::InProcess;
use common::rest::Rest;

const PASSWORD: &str = "a long admin password";
const LOGIN: &str = "/rest/v2/users/authenticate";

#[test]
fn wrong_passwords_from_one_address_do_not_lock_out_another() {
    let daemon = InProcess::start("", "");
    let addr = daemon.addr("HTTP");
    let mut setup = Rest::new(addr).setup_code(&daemon.setup_code());
    assert_eq!(setup.login("/rest/v2/users/initial", "admin", PASSWORD).status, 200);

    let mut guesser = Rest::new(addr).from("127.0.0.2");
    for _ in 0..5 {
        assert_eq!(guesser.login(LOGIN, "admin", "wrong password!").status, 401);
    }
    let locked = guesser.login(LOGIN, "admin", PASSWORD);
    assert_eq!(locked.status, 403, "the guessing address is locked out: {}", locked.body);
    assert!(guesser.cookie.is_none());

    let mut admin = Rest::new(addr);
    let answer = admin.login(LOGIN, "admin", PASSWORD);
    assert_eq!(answer.status, 200, "the right password from a clean address works: {}", answer.body);
    assert_eq!(admin.get("/rest/v2/users/session").json()["username"], "admin");
}

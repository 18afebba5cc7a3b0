//! Who is asking: anonymous, or a user with their groups.

/// A logged-in user as the permission check sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub admin: bool,
    /// Custom groups from `usergroups`.
    pub groups: Vec<String>,
}

/// The caller of one request or the owner of one WebSocket connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<User>,
    /// The server itself (the CLI's `add-admin`, setup): every right, no owner.
    pub system: bool,
}

impl Identity {
    pub fn anonymous() -> Self {
        Identity::default()
    }

    pub fn user(user: User) -> Self {
        Identity {
            user: Some(user),
            system: false,
        }
    }

    /// The server acting on its own behalf.
    pub fn system() -> Self {
        Identity {
            user: None,
            system: true,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.id.as_str())
    }

    pub fn is_admin(&self) -> bool {
        self.system || self.user.as_ref().is_some_and(|u| u.admin)
    }
}

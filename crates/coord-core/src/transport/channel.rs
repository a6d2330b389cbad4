//! Channel names and how each backend spells them.

use std::fmt;

use crate::identity::{Namespace, NodeId};

/// Who a channel reaches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every node of the namespace.
    All,
    /// One node.
    Node(NodeId),
}

/// A named channel: `<namespace>.all` or `<namespace>.node.<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Channel {
    /// The cluster's namespace.
    pub namespace: Namespace,
    /// Who the channel reaches.
    pub target: Target,
}

impl Channel {
    /// The broadcast channel of `namespace`.
    pub fn all(namespace: &Namespace) -> Self {
        Channel {
            namespace: namespace.clone(),
            target: Target::All,
        }
    }

    /// The channel of one node.
    pub fn node(namespace: &Namespace, node: &NodeId) -> Self {
        Channel {
            namespace: namespace.clone(),
            target: Target::Node(node.clone()),
        }
    }

    /// The name with `separator` between its parts: `.` gives NATS subjects
    /// and Redis channels (`coord.node.mx1`), `/` Zenoh key expressions.
    pub fn joined(&self, separator: char) -> String {
        match &self.target {
            Target::All => format!("{}{separator}all", self.namespace),
            Target::Node(node) => format!("{}{separator}node{separator}{node}", self.namespace),
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.joined('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_design() {
        let ns = Namespace::new("prod").unwrap();
        let node = NodeId::new("mx1").unwrap();
        assert_eq!(Channel::all(&ns).to_string(), "prod.all");
        assert_eq!(Channel::node(&ns, &node).to_string(), "prod.node.mx1");
        assert_eq!(Channel::node(&ns, &node).joined('/'), "prod/node/mx1");
    }
}

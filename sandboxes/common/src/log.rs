//! A request log whose entries are filled in two steps: pushed when the request arrives (so a
//! request that never gets an answer is still logged) and completed, by ticket, when it is
//! answered. The Mailchimp and Business Central sandboxes log this way; each keeps its own entry
//! type.

use std::sync::Mutex;

/// Entries in order of arrival, each with the ticket that completes it.
#[derive(Debug)]
pub struct TicketLog<T> {
    /// Entries with their tickets.
    entries: Mutex<Vec<(u64, T)>>,
    /// The last ticket handed out.
    next: Mutex<u64>,
}

impl<T> Default for TicketLog<T> {
    fn default() -> TicketLog<T> {
        TicketLog { entries: Mutex::new(Vec::new()), next: Mutex::new(0) }
    }
}

impl<T> TicketLog<T> {
    /// Appends an entry; returns its ticket.
    pub fn push(&self, entry: T) -> u64 {
        let ticket = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).push((ticket, entry));
        ticket
    }

    /// Changes the entry with `ticket`, if it is still in the log (it is gone after a
    /// [`clear`](Self::clear)).
    pub fn update(&self, ticket: u64, f: impl FnOnce(&mut T)) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, entry)) = entries.iter_mut().rev().find(|(t, _)| *t == ticket) {
            f(entry);
        }
    }

    /// A copy of the entries, oldest first.
    pub fn entries(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(_, e)| e.clone()).collect()
    }

    /// Empties the log (tickets keep counting).
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_by_ticket() {
        let log = TicketLog::default();
        let a = log.push(0);
        let b = log.push(0);
        log.update(b, |e| *e = 2);
        log.update(a, |e| *e = 1);
        assert_eq!(log.entries(), vec![1, 2]);
        log.clear();
        log.update(a, |e| *e = 9);
        assert!(log.entries().is_empty());
        assert_eq!(log.push(3), 3);
    }
}

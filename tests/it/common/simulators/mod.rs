//! Local stand-ins for upstreams that cannot run here, each following its documented
//! API closely, quirks included, and shared by every test that needs that upstream.

pub mod atlassian;
pub mod github;
pub mod google;
pub mod mattermost;
pub mod salesforce;

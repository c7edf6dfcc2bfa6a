//! TODO(in progress)
use crate::ui::PageError;
pub async fn home() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
pub async fn get() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
pub async fn change_password() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
pub async fn end_session() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
pub async fn revoke_app() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
pub mod password_policy;

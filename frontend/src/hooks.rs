//! Hooks shared by the pages: a cancellable delayed task, which is how every page polls.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use yew::platform::spawn_local;
use yew::prelude::*;

/// Whether the effect that started a task is still the current one. A task checks it after each
/// `await` and before dispatching, so an answer that arrives after the page moved on (another
/// query, another page) is dropped instead of overwriting newer data.
#[derive(Debug, Clone)]
pub struct Live(Rc<Cell<bool>>);

impl Live {
    pub fn get(&self) -> bool {
        self.0.get()
    }
}

type Task = Box<dyn FnOnce(Live) -> Pin<Box<dyn Future<Output = ()>>>>;

/// Runs `task` `delay` milliseconds after `key` or `delay` change (not at all for `None`). The
/// previous run is cancelled: its [`Live`] turns false.
#[hook]
pub fn use_delayed_task<K, F, Fut>(key: K, delay: Option<u32>, task: F)
where
    K: PartialEq + 'static,
    F: FnOnce(Live) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    // Boxed once here, so the timer and cancellation code below exists once in the download
    // rather than once per page.
    let task: Task = Box::new(move |live| Box::pin(task(live)));
    use_effect_with((key, delay), move |(_, delay)| start(*delay, task));
}

fn start(delay: Option<u32>, task: Task) -> impl FnOnce() {
    let live = Live(Rc::new(Cell::new(true)));
    if let Some(ms) = delay {
        let live = live.clone();
        spawn_local(async move {
            if ms > 0 {
                yew::platform::time::sleep(Duration::from_millis(u64::from(ms))).await;
            }
            if live.get() {
                task(live).await;
            }
        });
    }
    move || live.0.set(false)
}

/// Milliseconds since the Unix epoch on the browser's clock, for chart timestamps.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}
